//! Must not compile: #[hogged] takes exactly one hogger.

use std::sync::Mutex;
static A: Mutex<()> = Mutex::new(());

#[lockhog::hogged(&A, &A)]
fn one_hogger_only() {}

fn main() {}
