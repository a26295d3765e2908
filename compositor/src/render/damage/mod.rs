//! The output's damage tracker: which pixels of the target a frame redraws,
//! and what each element draws there.
//!
//! DOC: damage
//!
//! * A frame redraws its damage: what changed since the previous frame
//!   (elements that committed, appeared, disappeared, moved, were restacked
//!   or changed source, transform or alpha; opaque regions that stopped
//!   covering) plus what changed in the `age - 1` frames before it, because
//!   the target holds the picture of `age` frames ago. Without that history
//!   (age 0, a new target, a changed mode or clear colour) it redraws all.
//! * Damage rectangles are made disjoint before drawing: a translucent
//!   element drawn twice over one pixel would blend twice.
//! * An element's own damage (what its commits changed) leaves out what the
//!   opaque regions of the elements above it cover: those pixels show the
//!   elements above. Damage from moves, restacking and elements appearing
//!   or going is not cut.
//! * The clear covers the damage outside every opaque region; each element
//!   draws the damage inside its geometry minus the opaque regions of the
//!   elements above it. An element entirely under opaque regions is not
//!   drawn and is reported `Skipped`.
//! * When the element list is the previous frame's (the same elements in the
//!   same order, with the same geometry, source, transform, alpha and opaque
//!   regions: only their content may have changed), visibility and the opaque
//!   regions are the previous frame's, and only the elements whose commit
//!   moved add damage. This is the common frame (a client redraws, nothing
//!   moves) and costs one comparison per element instead of testing every
//!   element against every opaque region above it. Any other change works
//!   everything out again.
//! * An element whose serial says it is the very object the previous frame
//!   placed at the same index ([`ElementSerial`]) is taken as placed the same
//!   without asking it again: elements do not change once built, and
//!   working out a place and opaque regions rounds floating-point
//!   coordinates, which is most of the comparison's cost.
//! * A frame that fails after it was begun is still submitted with what it
//!   recorded; the failure names the elements that submission may read
//!   ([`PartialFrame`]), so their buffers wait for it as a finished frame's
//!   do. The tracker then forgets the target: the next frame redraws all.
//!
//! The rules are smithay's `OutputDamageTracker`'s; this tracker adds the
//! unchanged-scene path and keeps its state in plain vectors.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use smithay::backend::renderer::element::solid::SolidColorRenderElement;
use smithay::backend::renderer::element::texture::TextureRenderElement;
use smithay::backend::renderer::element::{
    Element, Id, RenderElement, RenderElementPresentationState, RenderElementState, RenderElementStates,
};
use smithay::backend::renderer::sync::SyncPoint;
use smithay::backend::renderer::utils::CommitCounter;
use smithay::backend::renderer::{Color32F, Frame, Renderer, Texture};
use smithay::output::Output;
use smithay::utils::{Buffer as BufferCoord, Physical, Point, Rectangle, Scale, Size, Transform};

type Rect = Rectangle<i32, Physical>;

/// How many frames of damage are kept for targets older than one frame.
const MAX_AGE: usize = 4;

/// Past this many damage rectangles a frame redraws their bounding box:
/// making them disjoint costs the square of their number.
const MAX_RECTS: usize = 256;

/// The output's size, scale and transform for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputMode {
    pub size: Size<i32, Physical>,
    pub scale: Scale<f64>,
    pub transform: Transform,
}

impl OutputMode {
    /// The output's current mode, scale and transform; `None` without a mode.
    pub fn of(output: &Output) -> Option<OutputMode> {
        Some(OutputMode {
            size: output.current_mode()?.size,
            scale: output.current_scale().fractional_scale().into(),
            transform: output.current_transform(),
        })
    }
}

/// An element that can say whether it is the very object an earlier frame
/// placed (module docs).
pub trait ElementSerial {
    /// A number given to this element object when it was built, unique
    /// over the compositor's life and kept while the object is reused
    /// between frames; `None`: unknown.
    fn serial(&self) -> Option<u64> {
        None
    }
}

/// smithay's own elements carry no serial: they are compared in full.
impl ElementSerial for SolidColorRenderElement {}
impl<T: Texture> ElementSerial for TextureRenderElement<T> {}

/// One element as placed on the output in one frame.
#[derive(Debug, Clone, PartialEq)]
struct Placed {
    id: Id,
    /// The element object's [`ElementSerial::serial`].
    serial: Option<u64>,
    commit: CommitCounter,
    geometry: Rect,
    src: Rectangle<f64, BufferCoord>,
    transform: Transform,
    alpha: f32,
    /// Output coordinates, clipped to the output.
    opaque: Vec<Rect>,
    /// Pixels not under an opaque region above it; 0 when hidden or off
    /// the output.
    visible: usize,
    /// Where its opaque regions are in [`Scene::opaque`] (visible only).
    opaque_range: Range<usize>,
}

/// `element`'s opaque regions in output coordinates, clipped to the output.
fn opaque_on_output<E: Element>(
    element: &E,
    scale: Scale<f64>,
    geometry: Rect,
    output: Rect,
) -> impl Iterator<Item = Rect> {
    element.opaque_regions(scale).into_iter().filter_map(move |mut r| {
        r.loc += geometry.loc;
        r.intersection(output)
    })
}

impl Placed {
    fn new<E: Element + ElementSerial>(element: &E, scale: Scale<f64>, output: Rect) -> Placed {
        let geometry = element.geometry(scale);
        let opaque = opaque_on_output(element, scale, geometry, output).collect();
        Placed {
            id: element.id().clone(),
            serial: element.serial(),
            commit: element.current_commit(),
            geometry,
            src: element.src(),
            transform: element.transform(),
            alpha: element.alpha(),
            opaque,
            visible: 0,
            opaque_range: 0..0,
        }
    }

    /// Whether `element` is placed as this: the same object, or the same
    /// id, place, look and opaque regions (only the content may differ).
    /// Allocates nothing.
    fn places<E: Element + ElementSerial>(&self, element: &E, scale: Scale<f64>, output: Rect) -> bool {
        if self.serial.is_some() && self.serial == element.serial() {
            return true;
        }
        let geometry = element.geometry(scale);
        self.id == *element.id()
            && self.geometry == geometry
            && self.src == element.src()
            && self.transform == element.transform()
            && self.alpha == element.alpha()
            && self
                .opaque
                .iter()
                .copied()
                .eq(opaque_on_output(element, scale, geometry, output))
    }

    /// Same place and the same position among the visible elements.
    fn same_instance(&self, other: &Placed, z: usize, other_z: usize) -> bool {
        self.geometry == other.geometry
            && self.src == other.src
            && self.transform == other.transform
            && self.alpha == other.alpha
            && z == other_z
    }
}

/// What the previous frame drew.
#[derive(Debug, Default)]
struct Scene {
    mode: Option<OutputMode>,
    clear: Option<Color32F>,
    /// Every element of the frame, front to back.
    placed: Vec<Placed>,
    /// The opaque regions of the visible elements, front to back.
    opaque: Vec<Rect>,
    /// Indices of the visible elements, front to back (an unchanged frame
    /// has the same).
    visible: Arc<[usize]>,
    /// The frame's element states (shared with the frame's result; an
    /// unchanged frame has the same).
    states: Arc<RenderElementStates>,
}

/// What a frame draws: the output of [`DamageTracker::plan`].
#[derive(Debug)]
pub struct Plan {
    /// Disjoint rectangles in output coordinates; empty: nothing to draw.
    pub damage: Vec<Rect>,
    /// Per element id: rendered with its visible area, or skipped.
    pub states: Arc<RenderElementStates>,
    /// Indices of the visible elements, front to back.
    visible: Arc<[usize]>,
}

/// A rendered (or skipped) frame.
#[derive(Debug)]
pub struct RenderedOutput {
    /// Signals when the GPU is done; already signalled when nothing was drawn.
    pub sync: SyncPoint,
    pub states: Arc<RenderElementStates>,
    /// The indices (into the frame's elements) of the elements drawn: only
    /// these can have been read by the frame, so only their buffers wait
    /// for `sync`. Empty when nothing was drawn.
    pub drawn: Vec<usize>,
}

/// A frame that failed after it was begun. A begun frame is always
/// submitted, so that nothing it recorded is freed under the GPU: `partial`
/// is that submission, whose reads must be waited for as a finished
/// frame's are. `None` when no frame was begun or its submission failed.
#[derive(Debug)]
pub struct RenderFailure<E> {
    pub error: E,
    pub partial: Option<PartialFrame>,
}

/// What a failed frame submitted: its sync point and the indices of the
/// elements it may have read (those drawn, and the one whose draw failed,
/// which may have recorded reads before failing).
#[derive(Debug)]
pub struct PartialFrame {
    pub sync: SyncPoint,
    pub read: Vec<usize>,
}

impl<E: std::fmt::Display> std::fmt::Display for RenderFailure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<E: std::error::Error> std::error::Error for RenderFailure<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Tracks one target chain's damage between frames (see the module's rules).
#[derive(Debug, Default)]
pub struct DamageTracker {
    scene: Scene,
    /// Damage of the previous frames, newest first.
    history: VecDeque<Vec<Rect>>,
    /// Frames that took the unchanged-scene path (the tests check it).
    unchanged_frames: u64,
}

impl DamageTracker {
    /// Frames so far whose element list was the previous frame's.
    pub fn unchanged_frames(&self) -> u64 {
        self.unchanged_frames
    }

    /// Works out the damage of a frame of `elements` (front to back) on a
    /// target holding the picture of `age` frames ago (0: unknown), and
    /// remembers this frame for the next one.
    pub fn plan<E: Element + ElementSerial>(
        &mut self,
        age: usize,
        elements: &[E],
        mode: OutputMode,
        clear: Color32F,
    ) -> Plan {
        let output = Rectangle::from_size(mode.transform.invert().transform_size(mode.size));
        let unchanged = self.scene.mode == Some(mode)
            && self.scene.clear == Some(clear)
            && elements.len() == self.scene.placed.len()
            && elements
                .iter()
                .zip(&self.scene.placed)
                .all(|(e, l)| l.places(e, mode.scale, output));
        let mut damage = Vec::new();
        let (placed, opaque, visible, states) = if unchanged {
            self.unchanged_frames += 1;
            let mut placed = std::mem::take(&mut self.scene.placed);
            let opaque = std::mem::take(&mut self.scene.opaque);
            for (p, e) in placed.iter_mut().zip(elements) {
                let serial = e.serial();
                if serial.is_some() && serial == p.serial {
                    // The very object placed last frame: its commit is the
                    // one it was built with (and not read, so a kept
                    // element's memory is not touched).
                    continue;
                }
                p.serial = serial;
                let commit = e.current_commit();
                // A hidden element keeps the commit last drawn: its content
                // is not on the target.
                if p.visible > 0 && p.commit != commit {
                    let above = &opaque[..p.opaque_range.start];
                    element_damage(
                        e,
                        p.geometry.loc,
                        mode.scale,
                        Some(p.commit),
                        output,
                        above,
                        &mut damage,
                    );
                    p.commit = commit;
                }
            }
            (placed, opaque, self.scene.visible.clone(), self.scene.states.clone())
        } else {
            let mut placed: Vec<Placed> = elements.iter().map(|e| Placed::new(e, mode.scale, output)).collect();
            let opaque = self.changed_scene(elements, &mut placed, mode, clear, output, &mut damage);
            let states = Arc::new(states(&placed, output));
            let visible = (0..placed.len()).filter(|&i| placed[i].visible > 0).collect();
            (placed, opaque, visible, states)
        };

        let new_damage = damage.clone();
        if age > 0 && self.history.len() >= age {
            damage.extend(self.history.iter().take(age - 1).flatten().copied());
        } else {
            damage.clear();
            damage.push(output);
        }
        let damage = disjoint(damage, output);
        if !damage.is_empty() {
            self.history.push_front(new_damage);
            self.history.truncate(MAX_AGE);
        }
        self.scene = Scene {
            mode: Some(mode),
            clear: Some(clear),
            placed,
            opaque,
            visible: visible.clone(),
            states: states.clone(),
        };
        Plan {
            damage,
            states,
            visible,
        }
    }

    /// The full work-out for a frame whose element list changed: visibility
    /// against the opaque regions above, damage of elements new, gone, moved
    /// or restacked, and of opaque regions that stopped covering.
    fn changed_scene<E: Element + ElementSerial>(
        &mut self,
        elements: &[E],
        placed: &mut [Placed],
        mode: OutputMode,
        clear: Color32F,
        output: Rect,
        damage: &mut Vec<Rect>,
    ) -> Vec<Rect> {
        let last = std::mem::take(&mut self.scene);
        // The previous frame's visible instances per id, with their z among
        // the visible elements.
        let mut before: HashMap<&Id, Vec<(usize, &Placed)>> = HashMap::new();
        for (z, l) in last.placed.iter().filter(|l| l.visible > 0).enumerate() {
            before.entry(&l.id).or_default().push((z, l));
        }
        let mut opaque: Vec<Rect> = Vec::new();
        let mut z = 0;
        for (p, e) in placed.iter_mut().zip(elements) {
            let Some(on_output) = p.geometry.intersection(output) else {
                continue;
            };
            p.visible = area(&Rectangle::subtract_rects_many_in_place(
                vec![on_output],
                opaque.iter().copied(),
            ));
            if p.visible == 0 {
                continue;
            }
            let previous = before.get(&p.id).map(|v| v.as_slice()).unwrap_or_default();
            let since = previous.first().map(|(_, l)| l.commit);
            element_damage(e, p.geometry.loc, mode.scale, since, output, &opaque, damage);
            if !previous.iter().any(|(lz, l)| p.same_instance(l, z, *lz)) {
                damage.push(on_output);
                damage.extend(previous.iter().filter_map(|(_, l)| l.geometry.intersection(output)));
            }
            let start = opaque.len();
            opaque.extend_from_slice(&p.opaque);
            p.opaque_range = start..opaque.len();
            z += 1;
        }
        // Visible before, gone or hidden now.
        let shown: HashSet<&Id> = placed.iter().filter(|p| p.visible > 0).map(|p| &p.id).collect();
        for l in last.placed.iter().filter(|l| l.visible > 0 && !shown.contains(&l.id)) {
            damage.extend(l.geometry.intersection(output));
        }
        // Covered before, uncovered now.
        damage.extend(Rectangle::subtract_rects_many_in_place(
            last.opaque.clone(),
            opaque.iter().copied(),
        ));
        if last.mode != Some(mode) || last.clear != Some(clear) {
            damage.clear();
            damage.push(output);
        }
        opaque
    }

    /// Draws `elements` (front to back) into `framebuffer`: the frame's
    /// damage, as [`plan`](Self::plan) works it out. Nothing is drawn, and no
    /// frame begun, when nothing is damaged. On failure the tracker forgets
    /// what the target holds, and what the frame submitted before it failed
    /// comes with the error.
    pub fn render_output<R, E>(
        &mut self,
        renderer: &mut R,
        framebuffer: &mut R::Framebuffer<'_>,
        age: usize,
        elements: &[E],
        mode: OutputMode,
        clear: Color32F,
    ) -> Result<RenderedOutput, RenderFailure<R::Error>>
    where
        R: Renderer,
        E: RenderElement<R> + ElementSerial,
    {
        let plan = self.plan(age, elements, mode, clear);
        if plan.damage.is_empty() {
            return Ok(RenderedOutput {
                sync: SyncPoint::signaled(),
                states: plan.states,
                drawn: Vec::new(),
            });
        }
        let result = self.draw(renderer, framebuffer, elements, mode, clear, &plan);
        if result.is_err() {
            // The target may be partly drawn: nothing about it is known.
            *self = DamageTracker::default();
        }
        let (sync, drawn) = result?;
        Ok(RenderedOutput {
            sync,
            states: plan.states,
            drawn,
        })
    }

    fn draw<R, E>(
        &self,
        renderer: &mut R,
        framebuffer: &mut R::Framebuffer<'_>,
        elements: &[E],
        mode: OutputMode,
        clear: Color32F,
        plan: &Plan,
    ) -> Result<(SyncPoint, Vec<usize>), RenderFailure<R::Error>>
    where
        R: Renderer,
        E: RenderElement<R>,
    {
        let mut frame = renderer
            .render(framebuffer, mode.size, mode.transform.invert())
            .map_err(|error| RenderFailure { error, partial: None })?;
        let mut drawn = Vec::new();
        match self.record(&mut frame, elements, clear, plan, &mut drawn) {
            Ok(()) => match frame.finish() {
                Ok(sync) => Ok((sync, drawn)),
                Err(error) => Err(RenderFailure { error, partial: None }),
            },
            Err(error) => {
                let partial = frame
                    .finish()
                    .inspect_err(|e| tracing::warn!("submitting a frame that failed partway: {e}"))
                    .ok()
                    .map(|sync| PartialFrame { sync, read: drawn });
                Err(RenderFailure { error, partial })
            }
        }
    }

    /// Records the clear and the damaged elements, back to front, noting in
    /// `drawn` each element before it draws.
    fn record<R, E>(
        &self,
        frame: &mut R::Frame<'_, '_>,
        elements: &[E],
        clear: Color32F,
        plan: &Plan,
        drawn: &mut Vec<usize>,
    ) -> Result<(), R::Error>
    where
        R: Renderer,
        E: RenderElement<R>,
    {
        let opaque = &self.scene.opaque;
        let uncovered = cut(plan.damage.clone(), opaque);
        frame.clear(clear, &uncovered)?;
        for &i in plan.visible.iter().rev() {
            let p = &self.scene.placed[i];
            if !plan.damage.iter().any(|d| d.overlaps(p.geometry)) {
                continue;
            }
            let inside: Vec<Rect> = plan.damage.iter().filter_map(|d| d.intersection(p.geometry)).collect();
            let mut own = cut(inside, &opaque[..p.opaque_range.start]);
            if own.is_empty() {
                continue;
            }
            for r in &mut own {
                r.loc -= p.geometry.loc;
            }
            let own_opaque: Vec<Rect> = opaque[p.opaque_range.clone()]
                .iter()
                .map(|r| Rectangle::new(r.loc - p.geometry.loc, r.size))
                .collect();
            drawn.push(i);
            elements[i].draw(frame, p.src, p.geometry, &own, &own_opaque)?;
        }
        Ok(())
    }
}

/// The damage since `since` of an element at `loc`, in output coordinates,
/// less what the opaque regions of the elements `above` it cover: those
/// pixels show the elements above, which did not change with it.
fn element_damage<E: Element>(
    element: &E,
    loc: Point<i32, Physical>,
    scale: Scale<f64>,
    since: Option<CommitCounter>,
    output: Rect,
    above: &[Rect],
    into: &mut Vec<Rect>,
) {
    let own: Vec<Rect> = element
        .damage_since(scale, since)
        .into_iter()
        .filter_map(|mut d| {
            d.loc += loc;
            d.intersection(output)
        })
        .collect();
    into.extend(cut(own, above));
}

/// `rects` less what `opaque` covers. Only the opaque rectangles that reach
/// the bounding box of `rects` are subtracted: no other can cut them.
fn cut(rects: Vec<Rect>, opaque: &[Rect]) -> Vec<Rect> {
    let Some(reach) = rects.iter().copied().reduce(Rectangle::merge) else {
        return rects;
    };
    let mut cutting = opaque.iter().copied().filter(|o| reach.overlaps(*o)).peekable();
    if cutting.peek().is_none() {
        return rects;
    }
    Rectangle::subtract_rects_many_in_place(rects, cutting)
}

fn area(rects: &[Rect]) -> usize {
    rects
        .iter()
        .map(|r| (r.size.w.max(0) as usize) * (r.size.h.max(0) as usize))
        .sum()
}

/// `damage` clipped to the output, with duplicates and overlaps removed
/// (each pixel once), or their bounding box past [`MAX_RECTS`].
fn disjoint(mut damage: Vec<Rect>, output: Rect) -> Vec<Rect> {
    damage.retain_mut(|r| match r.intersection(output) {
        Some(clipped) => {
            *r = clipped;
            true
        }
        None => false,
    });
    // Largest first: smaller ones inside them vanish whole.
    damage.sort_unstable_by_key(|r| std::cmp::Reverse(i64::from(r.size.w) * i64::from(r.size.h)));
    damage.dedup();
    if damage.len() > MAX_RECTS {
        let bbox = damage.iter().copied().reduce(Rectangle::merge);
        return bbox.into_iter().collect();
    }
    let mut out: Vec<Rect> = Vec::with_capacity(damage.len());
    for r in damage {
        if !out.iter().any(|o| o.overlaps(r)) {
            out.push(r);
            continue;
        }
        let pieces = Rectangle::subtract_rects_many_in_place(vec![r], out.iter().copied());
        out.extend(pieces);
    }
    out
}

/// Rendered with the visible area summed over an id's instances, skipped
/// when under opaque regions; no state for elements off the output.
fn states(placed: &[Placed], output: Rect) -> RenderElementStates {
    let mut states = RenderElementStates {
        states: HashMap::with_capacity(placed.len()),
    };
    for p in placed.iter().filter(|p| p.geometry.overlaps(output)) {
        let state = states.states.entry(p.id.clone()).or_insert(RenderElementState {
            visible_area: 0,
            presentation_state: RenderElementPresentationState::Skipped,
        });
        if p.visible > 0 {
            state.visible_area += p.visible;
            state.presentation_state = RenderElementPresentationState::Rendering { reason: None };
        }
    }
    states
}

#[cfg(test)]
mod tests;
