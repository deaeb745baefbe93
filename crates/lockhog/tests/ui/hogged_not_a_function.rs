//! Must not compile: #[hogged] on something that is not a function.

use std::sync::Mutex;
static A: Mutex<()> = Mutex::new(());

#[lockhog::hogged(&A)]
struct NotATest;

fn main() {}
