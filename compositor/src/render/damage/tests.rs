//! Tests of the damage tracker: named cases, then random scenes painted
//! through the tracker's damage against a full repaint.

use smithay::backend::renderer::element::solid::SolidColorRenderElement;
use smithay::backend::renderer::element::{Element, Id, Kind, RenderElement};
use smithay::backend::renderer::test::{DummyError, DummyFrame, DummyFramebuffer, DummyRenderer};
use smithay::backend::renderer::utils::{CommitCounter, DamageSet, OpaqueRegions};
use smithay::backend::renderer::Color32F;
use smithay::utils::{Buffer as BufferCoords, Physical, Point, Rectangle, Scale, Transform};

use super::{DamageTracker, ElementSerial, OutputMode, Rect};

const SIZE: i32 = 32;

fn mode() -> OutputMode {
    OutputMode {
        size: (SIZE, SIZE).into(),
        scale: 1.0.into(),
        transform: Transform::Normal,
    }
}

const CLEAR: Color32F = Color32F::new(0.1, 0.1, 0.1, 1.0);

/// A test element: an id, a place, a commit and an alpha, and the serial
/// its element object would have in a scene that rebuilds an element on
/// any change ([`change`] gives a new one).
#[derive(Debug, Clone)]
struct Item {
    id: Id,
    rect: Rect,
    commit: usize,
    alpha: f32,
    serial: u64,
}

impl Item {
    fn new(x: i32, y: i32, w: i32, h: i32, alpha: f32) -> Item {
        Item {
            id: Id::new(),
            rect: Rectangle::new((x, y).into(), (w, h).into()),
            commit: 0,
            alpha,
            serial: next_serial(),
        }
    }

    fn element(&self) -> SolidColorRenderElement {
        SolidColorRenderElement::new(
            self.id.clone(),
            self.rect,
            self.commit,
            Color32F::new(0.5, 0.5, 0.5, self.alpha),
            Kind::Unspecified,
        )
    }
}

fn elements(items: &[Item]) -> Vec<SolidColorRenderElement> {
    items.iter().map(Item::element).collect()
}

fn next_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A solid element with the item's serial, as the scene's elements carry,
/// and whether drawing it fails.
struct Numbered(SolidColorRenderElement, u64, bool);

impl ElementSerial for Numbered {
    fn serial(&self) -> Option<u64> {
        Some(self.1)
    }
}

impl Element for Numbered {
    fn id(&self) -> &Id {
        self.0.id()
    }
    fn current_commit(&self) -> CommitCounter {
        self.0.current_commit()
    }
    fn location(&self, scale: Scale<f64>) -> Point<i32, Physical> {
        self.0.location(scale)
    }
    fn src(&self) -> Rectangle<f64, BufferCoords> {
        self.0.src()
    }
    fn transform(&self) -> Transform {
        self.0.transform()
    }
    fn geometry(&self, scale: Scale<f64>) -> Rectangle<i32, Physical> {
        self.0.geometry(scale)
    }
    fn damage_since(&self, scale: Scale<f64>, commit: Option<CommitCounter>) -> DamageSet<i32, Physical> {
        self.0.damage_since(scale, commit)
    }
    fn opaque_regions(&self, scale: Scale<f64>) -> OpaqueRegions<i32, Physical> {
        self.0.opaque_regions(scale)
    }
    fn alpha(&self) -> f32 {
        self.0.alpha()
    }
    fn kind(&self) -> Kind {
        self.0.kind()
    }
}

impl RenderElement<DummyRenderer> for Numbered {
    fn draw(
        &self,
        frame: &mut DummyFrame,
        src: Rectangle<f64, BufferCoords>,
        dst: Rect,
        damage: &[Rect],
        opaque_regions: &[Rect],
    ) -> Result<(), DummyError> {
        if self.2 {
            return Err(DummyError::SyncInterrupted);
        }
        RenderElement::<DummyRenderer>::draw(&self.0, frame, src, dst, damage, opaque_regions)
    }
}

fn numbered(items: &[Item]) -> Vec<Numbered> {
    items.iter().map(|i| Numbered(i.element(), i.serial, false)).collect()
}

fn area(rects: &[Rect]) -> i32 {
    rects.iter().map(|r| r.size.w * r.size.h).sum()
}

#[test]
fn the_first_frame_redraws_everything_and_an_unchanged_one_nothing() {
    let items = [Item::new(0, 0, 8, 8, 1.0)];
    let mut t = DamageTracker::default();
    let plan = t.plan(0, &elements(&items), mode(), CLEAR);
    assert_eq!(plan.damage, vec![Rectangle::from_size((SIZE, SIZE).into())]);
    let plan = t.plan(1, &elements(&items), mode(), CLEAR);
    assert!(plan.damage.is_empty(), "{:?}", plan.damage);
    assert_eq!(t.unchanged_frames(), 1);
}

#[test]
fn a_commit_damages_only_its_element_without_working_out_the_scene_again() {
    let mut items = [Item::new(0, 0, 8, 8, 1.0), Item::new(16, 16, 8, 8, 1.0)];
    let mut t = DamageTracker::default();
    t.plan(0, &elements(&items), mode(), CLEAR);
    items[1].commit += 1;
    let plan = t.plan(1, &elements(&items), mode(), CLEAR);
    assert_eq!(plan.damage, vec![items[1].rect]);
    assert_eq!(t.unchanged_frames(), 1);
}

#[test]
fn a_move_damages_the_old_and_the_new_place() {
    let mut items = [Item::new(0, 0, 8, 8, 1.0)];
    let mut t = DamageTracker::default();
    t.plan(0, &elements(&items), mode(), CLEAR);
    items[0].rect.loc = (20, 20).into();
    let plan = t.plan(1, &elements(&items), mode(), CLEAR);
    assert_eq!(area(&plan.damage), 2 * 64);
    assert_eq!(t.unchanged_frames(), 0);
}

#[test]
fn an_element_under_an_opaque_one_is_skipped_and_its_commits_damage_nothing() {
    use smithay::backend::renderer::element::RenderElementPresentationState as P;
    let mut items = [Item::new(0, 0, 16, 16, 1.0), Item::new(4, 4, 8, 8, 1.0)];
    let mut t = DamageTracker::default();
    let plan = t.plan(0, &elements(&items), mode(), CLEAR);
    let state = plan.states.element_render_state(items[1].id.clone()).unwrap();
    assert_eq!(state.presentation_state, P::Skipped);
    items[1].commit += 1;
    let plan = t.plan(1, &elements(&items), mode(), CLEAR);
    assert!(plan.damage.is_empty(), "{:?}", plan.damage);
}

#[test]
fn a_commit_under_an_opaque_element_damages_only_what_shows() {
    // Front to back: an opaque 8×8 over part of a 16×16.
    let mut items = [Item::new(4, 4, 8, 8, 1.0), Item::new(0, 0, 16, 16, 1.0)];
    let mut t = DamageTracker::default();
    t.plan(0, &elements(&items), mode(), CLEAR);
    items[1].commit += 1;
    let plan = t.plan(1, &elements(&items), mode(), CLEAR);
    assert_eq!(area(&plan.damage), 16 * 16 - 8 * 8, "{:?}", plan.damage);
    assert!(plan.damage.iter().all(|d| !d.overlaps(items[0].rect)));
}

#[test]
fn an_older_target_gets_the_damage_of_the_frames_it_missed() {
    let mut items = [Item::new(0, 0, 8, 8, 1.0), Item::new(16, 16, 8, 8, 1.0)];
    let mut t = DamageTracker::default();
    t.plan(0, &elements(&items), mode(), CLEAR);
    items[0].commit += 1;
    t.plan(1, &elements(&items), mode(), CLEAR);
    items[1].commit += 1;
    let plan = t.plan(2, &elements(&items), mode(), CLEAR);
    assert_eq!(area(&plan.damage), 2 * 64);
    let plan = t.plan(9, &elements(&items), mode(), CLEAR);
    assert_eq!(plan.damage, vec![Rectangle::from_size((SIZE, SIZE).into())]);
}

/// Elements do not change once built, so an element with the serial it had
/// in the previous frame is taken as placed the same without asking it: the
/// tracker trusts the serial (here, against a moved element, which a scene
/// would have rebuilt with a new serial).
#[test]
fn an_element_with_the_serial_it_had_is_not_compared_again() {
    let mut items = [Item::new(0, 0, 8, 8, 1.0)];
    let mut t = DamageTracker::default();
    t.plan(0, &numbered(&items), mode(), CLEAR);
    items[0].rect.loc = (20, 20).into();
    let plan = t.plan(1, &numbered(&items), mode(), CLEAR);
    assert!(plan.damage.is_empty(), "{:?}", plan.damage);
    assert_eq!(t.unchanged_frames(), 1);
    items[0].serial = next_serial();
    let plan = t.plan(1, &numbered(&items), mode(), CLEAR);
    assert_eq!(area(&plan.damage), 2 * 64);
    assert_eq!(t.unchanged_frames(), 1);
}

/// A frame whose element fails to draw was still submitted with what it
/// had recorded: the failure says which elements it may have read (those
/// drawn before, and the failing one), so that their buffers wait for it,
/// and the tracker no longer trusts the target.
#[test]
fn a_frame_that_fails_partway_reports_what_it_submitted() {
    // Front to back; drawn back to front, so index 1 draws before index 0.
    let items = [
        Item::new(0, 0, 8, 8, 1.0),
        Item::new(16, 16, 8, 8, 1.0),
        Item::new(24, 0, 4, 4, 1.0),
    ];
    let mut elements = numbered(&items);
    elements[0].2 = true;
    let mut t = DamageTracker::default();
    let failure = t
        .render_output(&mut DummyRenderer, &mut DummyFramebuffer, 0, &elements, mode(), CLEAR)
        .expect_err("the front element fails");
    let partial = failure.partial.expect("the begun frame was submitted");
    assert_eq!(partial.read, vec![2, 1, 0]);
    let plan = t.plan(1, &elements, mode(), CLEAR);
    assert_eq!(plan.damage, vec![Rectangle::from_size((SIZE, SIZE).into())]);

    elements[0].2 = false;
    let done = t
        .render_output(&mut DummyRenderer, &mut DummyFramebuffer, 0, &elements, mode(), CLEAR)
        .expect("nothing fails");
    assert_eq!(done.drawn, vec![2, 1, 0]);
}

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> i32 {
        (self.next() % n) as i32
    }
}

/// One pixel's content: a hash of what was painted over the clear colour,
/// back to front (opaque elements replace, translucent ones mix).
fn truth(items: &[Item], x: i32, y: i32) -> u64 {
    let mut value = 1u64;
    for item in items.iter().rev() {
        if !item.rect.contains((x, y)) {
            continue;
        }
        let own = (item.commit as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ item.rect.loc.x as u64;
        value = if item.alpha >= 1.0 {
            own
        } else {
            value.wrapping_mul(31).wrapping_add(own)
        };
    }
    value
}

/// Random scenes, changed at random (commits, moves, restacking, elements
/// added and removed, opacity), drawn into a ring of targets only where the
/// tracker says: every target must then hold the full repaint, and no pixel
/// may be damaged twice in one frame (it would blend twice). Once with
/// elements without serials, once with serials as a scene gives them.
#[test]
fn painting_only_the_damage_gives_the_full_picture() {
    paint_random_scenes(|t, age, items| t.plan(age, &elements(items), mode(), CLEAR));
    paint_random_scenes(|t, age, items| t.plan(age, &numbered(items), mode(), CLEAR));
}

fn paint_random_scenes(mut plan: impl FnMut(&mut DamageTracker, usize, &[Item]) -> super::Plan) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..200 {
        let buffers = 1 + (round % 3);
        let mut targets = vec![vec![0u64; (SIZE * SIZE) as usize]; buffers];
        let mut drawn_at: Vec<Option<usize>> = vec![None; buffers];
        let mut t = DamageTracker::default();
        let mut items: Vec<Item> = (0..1 + rng.below(6)).map(|_| random_item(&mut rng)).collect();
        for frame in 0..12 {
            change(&mut rng, &mut items);
            let b = frame % buffers;
            let age = drawn_at[b].map_or(0, |at| frame - at);
            let plan = plan(&mut t, age, &items);
            let mut count = vec![0u8; (SIZE * SIZE) as usize];
            for r in &plan.damage {
                for y in r.loc.y..r.loc.y + r.size.h {
                    for x in r.loc.x..r.loc.x + r.size.w {
                        let i = (y * SIZE + x) as usize;
                        count[i] += 1;
                        assert_eq!(count[i], 1, "round {round} frame {frame}: ({x},{y}) damaged twice");
                        targets[b][i] = truth(&items, x, y);
                    }
                }
            }
            drawn_at[b] = Some(frame);
            for y in 0..SIZE {
                for x in 0..SIZE {
                    assert_eq!(
                        targets[b][(y * SIZE + x) as usize],
                        truth(&items, x, y),
                        "round {round} frame {frame} age {age}: ({x},{y}) is stale; items {items:?}"
                    );
                }
            }
        }
    }
}

fn random_item(rng: &mut Rng) -> Item {
    let alpha = if rng.below(2) == 0 { 1.0 } else { 0.5 };
    Item::new(
        rng.below(SIZE as u64 + 8) - 4,
        rng.below(SIZE as u64 + 8) - 4,
        1 + rng.below(20),
        1 + rng.below(20),
        alpha,
    )
}

fn change(rng: &mut Rng, items: &mut Vec<Item>) {
    match rng.below(10) {
        0..=3 if !items.is_empty() => {
            let i = rng.below(items.len() as u64) as usize;
            items[i].commit += 1;
            items[i].serial = next_serial();
        }
        4 if !items.is_empty() => {
            let i = rng.below(items.len() as u64) as usize;
            items[i].rect.loc = (rng.below(SIZE as u64) - 4, rng.below(SIZE as u64) - 4).into();
            items[i].serial = next_serial();
        }
        5 if items.len() > 1 => {
            let i = rng.below(items.len() as u64) as usize;
            let item = items.remove(i);
            items.insert(0, item);
        }
        6 if items.len() < 8 => items.insert(rng.below(items.len() as u64 + 1) as usize, random_item(rng)),
        7 if !items.is_empty() => {
            items.remove(rng.below(items.len() as u64) as usize);
        }
        8 if !items.is_empty() => {
            let i = rng.below(items.len() as u64) as usize;
            items[i].alpha = if items[i].alpha >= 1.0 { 0.5 } else { 1.0 };
            items[i].serial = next_serial();
        }
        _ => {}
    }
}
