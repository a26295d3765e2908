//! The enabled implementation of [`crate::lockdep`] (debug/test builds).
//!
//! DOC: data
//!
//! * Per thread: the stack of held locks (class, instance, nest key, token)
//!   and whether violations are recorded instead of panicking.
//! * Global: the class-order graph, `edges[from][to] = first chain seen`, kept
//!   acyclic (an edge closing a cycle is reported, not inserted), and counters.
//!
//! The graph's own mutex is a leaf lock outside the hierarchy: it is held only
//! for map lookups, never while calling out or panicking.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{HeldLock, LockClass, NestKey, Violation, ViolationKind};

pub const ENABLED: bool = true;

#[derive(Debug, Clone)]
struct Held {
    class: &'static LockClass,
    instance: usize,
    nest: Option<NestKey>,
    token: u64,
    trylock: bool,
}

/// How an edge was first observed: the thread and its held stack.
#[derive(Debug, Clone)]
struct Chain {
    thread: String,
    text: String,
}

#[derive(Default)]
struct Graph {
    edges: HashMap<usize, HashMap<usize, Chain>>,
    names: HashMap<usize, &'static str>,
}

static GRAPH: Mutex<Option<Graph>> = Mutex::new(None);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static UNEXPECTED: AtomicUsize = AtomicUsize::new(0);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
static PANIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

pub fn set_panic_on_violation(panic: bool) {
    PANIC.store(panic, Ordering::Relaxed);
}

thread_local! {
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
    static RECORDING: Cell<u32> = const { Cell::new(0) };
    static RECORDED: RefCell<Vec<Violation>> = const { RefCell::new(Vec::new()) };
}

fn thread_name() -> String {
    let t = std::thread::current();
    t.name().map(str::to_owned).unwrap_or_else(|| format!("{:?}", t.id()))
}

fn describe_stack(stack: &[Held]) -> String {
    let mut s = String::new();
    for (i, h) in stack.iter().enumerate() {
        let _ = write!(
            s,
            "{}{} #{:x}",
            if i > 0 { " → " } else { "" },
            h.class.name,
            h.instance
        );
        if h.trylock {
            s.push_str(" (try)");
        }
        if let Some(n) = h.nest {
            let _ = write!(s, " [ctx {}]", n.0);
        }
    }
    if s.is_empty() {
        s.push_str("(nothing)");
    }
    s
}

fn held_snapshot() -> Vec<Held> {
    HELD.with(|h| h.borrow().clone())
}

/// Reports a violation: counts it, then records or panics. The caller holds
/// no RefCell borrow and no graph lock.
fn violate(kind: ViolationKind, message: String) {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let recording = RECORDING.with(|r| r.get() > 0);
    let message = format!("lockdep: {kind:?}: {message}");
    if recording {
        RECORDED.with(|r| r.borrow_mut().push(Violation { kind, message }));
        if kind == ViolationKind::RecursiveLock && !std::thread::panicking() {
            panic!("{}", RECORDED.with(|r| r.borrow().last().unwrap().message.clone()));
        }
        return;
    }
    UNEXPECTED.fetch_add(1, Ordering::Relaxed);
    tracing::error!("{message}");
    let must_panic = PANIC.load(Ordering::Relaxed) || kind == ViolationKind::RecursiveLock;
    if must_panic && !std::thread::panicking() {
        panic!("{message}");
    }
}

/// Breadth-first search `from` →* `to`; returns the edges of the path.
fn find_path(g: &Graph, from: usize, to: usize) -> Option<Vec<(usize, usize)>> {
    let mut prev: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = Vec::new();
            let mut cur = to;
            while cur != from {
                let p = prev[&cur];
                path.push((p, cur));
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        for &next in g.edges.get(&n).into_iter().flat_map(|m| m.keys()) {
            if next != from && !prev.contains_key(&next) {
                prev.insert(next, n);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Adds `held → class` for every distinct held class; returns a cycle report
/// if one of them would close a cycle.
fn add_edges(stack: &[Held], class: &'static LockClass) -> Option<String> {
    let to = class.key();
    let mut guard = GRAPH.lock().unwrap_or_else(|p| p.into_inner());
    let g = guard.get_or_insert_with(Graph::default);
    g.names.insert(to, class.name);
    for h in stack {
        let from = h.class.key();
        if from == to || g.edges.get(&from).is_some_and(|m| m.contains_key(&to)) {
            continue;
        }
        g.names.insert(from, h.class.name);
        if let Some(path) = find_path(g, to, from) {
            let mut msg = format!(
                "lock order cycle: taking \"{}\" while holding \"{}\"\n  new chain (thread {}): {} → {} #taking\n  existing chain, which takes \"{}\" before \"{}\":",
                class.name,
                h.class.name,
                thread_name(),
                describe_stack(stack),
                class.name,
                class.name,
                h.class.name
            );
            for (a, b) in path {
                let c = &g.edges[&a][&b];
                let _ = write!(
                    msg,
                    "\n    {} → {} first seen on thread {}: {}",
                    g.names[&a], g.names[&b], c.thread, c.text
                );
            }
            return Some(msg);
        }
        let chain = Chain {
            thread: thread_name(),
            text: format!("{} → {}", describe_stack(stack), class.name),
        };
        g.edges.entry(from).or_default().insert(to, chain);
    }
    None
}

pub fn acquire(class: &'static LockClass, instance: usize, nest: Option<NestKey>, trylock: bool) -> HeldLock {
    let stack = held_snapshot();
    for h in stack.iter().filter(|h| h.class.key() == class.key()) {
        if h.instance == instance {
            violate(
                ViolationKind::RecursiveLock,
                format!(
                    "\"{}\" #{instance:x} locked again by the thread that holds it (self-deadlock); held: {}",
                    class.name,
                    describe_stack(&stack)
                ),
            );
        } else if !trylock && (nest.is_none() || h.nest != nest) {
            violate(
                ViolationKind::NestedWithoutContext,
                format!(
                    "two \"{}\" locks nested outside one acquire context: taking #{instance:x} while holding #{:x}; held: {}",
                    class.name,
                    h.instance,
                    describe_stack(&stack)
                ),
            );
        }
    }
    if !trylock && !stack.is_empty() {
        if let Some(msg) = add_edges(&stack, class) {
            violate(ViolationKind::LockOrderCycle, msg);
        }
    }
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    HELD.with(|h| {
        h.borrow_mut().push(Held {
            class,
            instance,
            nest,
            token,
            trylock,
        })
    });
    HeldLock::from_token(token)
}

pub fn release(token: u64) {
    let _ = HELD.try_with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|x| x.token == token) {
            h.remove(i);
        }
    });
}

pub fn might_block(what: &str) {
    let stack = held_snapshot();
    if let Some(h) = stack.iter().find(|h| !h.class.may_block_while_held) {
        violate(
            ViolationKind::BlockingUnderLock,
            format!(
                "blocking operation \"{what}\" while holding \"{}\" #{:x} (never block under a reservation: rule B2 of docs/locking-rules.md); held: {}",
                h.class.name,
                h.instance,
                describe_stack(&stack)
            ),
        );
    }
}

pub fn assert_held(class: &'static LockClass, instance: usize, what: &str) {
    let stack = held_snapshot();
    if !stack
        .iter()
        .any(|h| h.class.key() == class.key() && h.instance == instance)
    {
        violate(
            ViolationKind::NotHeld,
            format!(
                "\"{what}\" needs \"{}\" #{instance:x} held; held: {}",
                class.name,
                describe_stack(&stack)
            ),
        );
    }
}

pub fn assert_class_not_held(class: &'static LockClass, what: &str) {
    let stack = held_snapshot();
    if let Some(h) = stack.iter().find(|h| h.class.key() == class.key()) {
        violate(
            ViolationKind::HeldWhenForbidden,
            format!(
                "\"{what}\" must run with no \"{}\" held, but #{:x} is; held: {}",
                class.name,
                h.instance,
                describe_stack(&stack)
            ),
        );
    }
}

pub fn held_count(class: &'static LockClass) -> usize {
    HELD.with(|h| h.borrow().iter().filter(|h| h.class.key() == class.key()).count())
}

pub fn record<R>(f: impl FnOnce() -> R) -> (R, Vec<Violation>) {
    struct Leave(usize);
    impl Drop for Leave {
        fn drop(&mut self) {
            RECORDING.with(|r| r.set(r.get() - 1));
            // On unwind, drop what this scope recorded; the counters keep it.
            RECORDED.with(|r| r.borrow_mut().truncate(self.0));
        }
    }
    let start = RECORDED.with(|r| r.borrow().len());
    RECORDING.with(|r| r.set(r.get() + 1));
    let leave = Leave(start);
    let out = f();
    let got = RECORDED.with(|r| r.borrow_mut().split_off(start));
    drop(leave);
    (out, got)
}

pub fn violations_total() -> usize {
    TOTAL.load(Ordering::Relaxed)
}

pub fn unexpected_violations() -> usize {
    UNEXPECTED.load(Ordering::Relaxed)
}
