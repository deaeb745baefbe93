//! Must not compile: #[hogged] wraps only a test function without arguments.

use std::sync::Mutex;
static A: Mutex<()> = Mutex::new(());

#[lockhog::hogged(&A)]
fn takes_an_argument(n: u32) {
    let _ = n;
}

fn main() {}
