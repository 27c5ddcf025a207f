//! The binaries' allocator setup: `use_allocator!` configures mimalloc before `main`.
#![cfg(all(feature = "mimalloc", target_os = "linux"))]

sluice::use_allocator!();

#[test]
fn the_constructor_has_mimalloc_commit_arenas_on_demand() {
    // set by the constructor registered by use_allocator! (without it the option is 2); that
    // it runs before the first allocation is the loader's order, not checked here
    assert_eq!(sluice::alloc::arena_eager_commit(), 0);
    // and the allocator works
    let v: Vec<u64> = (0..1_000_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 499_999_500_000);
}
