//! Must not compile: #[hogged] without the hogger to hold.

#[lockhog::hogged]
#[test]
fn needs_a_hogger() {}

fn main() {}
