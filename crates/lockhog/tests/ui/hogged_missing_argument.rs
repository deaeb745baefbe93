#[lockhog::hogged]
#[test]
fn needs_a_hogger() {}

fn main() {}
