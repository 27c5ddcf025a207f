//! The binaries' allocator setup: `use_allocator!` configures mimalloc before `main`.
#![cfg(feature = "mimalloc")]

sluice::use_allocator!();

#[test]
fn arenas_are_committed_on_demand_from_the_start() {
    // set by the constructor, before the test harness allocated anything
    assert_eq!(sluice::alloc::arena_eager_commit(), 0);
    // and the allocator works
    let v: Vec<u64> = (0..1_000_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 499_999_500_000);
}
