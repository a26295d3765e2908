//! The lock the reservation is built on, swapped for a loom model under
//! `cfg(loom)`.
//!
//! DOC: only the reservation's own mutex is modelled. Fence objects, mapping
//! handles and the id counter use `std` types in both builds: loom explores
//! the interleavings of the reservation protocol, not of refcounts.
//!
//! Under loom the mutex is built from a loom `Mutex<bool>` (held only for a
//! few instructions) and a loom `Condvar`, not `loom::sync::Mutex` directly:
//! loom 0.7's `try_lock` marks the trying thread blocked when another thread
//! takes the lock meanwhile and reports a false deadlock (tokio-rs/loom#376,
//! fix pending in #383), and a spin lock makes loom's path explode. Real
//! deadlocks still fail the model (every thread waiting on a condvar).

pub(crate) use std::sync::TryLockError;

#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use self::model::{Mutex, MutexGuard};

#[cfg(loom)]
mod model {
    use loom::cell::UnsafeCell;
    use loom::sync::{Condvar, Mutex as LoomMutex};
    use std::marker::PhantomData;
    use std::sync::{LockResult, TryLockError, TryLockResult};

    pub(crate) struct Mutex<T> {
        /// `true` while a guard exists.
        locked: LoomMutex<bool>,
        unlocked: Condvar,
        data: UnsafeCell<T>,
    }

    // SAFETY: `data` is only reached through a guard, one at a time.
    unsafe impl<T: Send> Send for Mutex<T> {}
    unsafe impl<T: Send> Sync for Mutex<T> {}

    pub(crate) struct MutexGuard<'a, T> {
        lock: &'a Mutex<T>,
        _not_send: PhantomData<*const ()>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(v: T) -> Self {
            Mutex {
                locked: LoomMutex::new(false),
                unlocked: Condvar::new(),
                data: UnsafeCell::new(v),
            }
        }

        pub(crate) fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
            let mut locked = self.locked.lock().unwrap();
            while *locked {
                locked = self.unlocked.wait(locked).unwrap();
            }
            *locked = true;
            Ok(MutexGuard {
                lock: self,
                _not_send: PhantomData,
            })
        }

        pub(crate) fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
            let mut locked = self.locked.lock().unwrap();
            if *locked {
                return Err(TryLockError::WouldBlock);
            }
            *locked = true;
            Ok(MutexGuard {
                lock: self,
                _not_send: PhantomData,
            })
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard holds the lock.
            self.lock.data.with(|p| unsafe { &*p })
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard holds the lock exclusively.
            self.lock.data.with_mut(|p| unsafe { &mut *p })
        }
    }

    impl<T> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                return; // the model failed; touching loom objects now aborts
            }
            *self.lock.locked.lock().unwrap() = false;
            self.lock.unlocked.notify_one();
        }
    }
}
