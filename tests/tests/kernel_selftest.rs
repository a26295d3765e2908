//! Harness self-test for the kernel VM tier: a test that fails on purpose
//! when `VM_SELFTEST_FAIL=1`. `scripts/vm/selftest.sh` runs it inside the VM
//! and checks that `scripts/vm/test.sh` (and so CI) then fails. The normal VM
//! run does not run this binary; on the host it is ignored.

#[test]
#[ignore = "kernel VM tier harness self-test (run scripts/vm/selftest.sh)"]
fn vm_selftest_deliberate_failure() {
    let armed = std::env::var("VM_SELFTEST_FAIL").as_deref() == Ok("1");
    assert!(
        !armed,
        "deliberate failure (VM_SELFTEST_FAIL=1) on kernel {}",
        testkit::kernel::kernel_release()
    );
}
