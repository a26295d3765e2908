//! A frame that starts from the last frame's elements instead of walking
//! the space (the scene's module docs: frames without a walk).

use smithay::{
    backend::renderer::utils::RendererSurfaceStateUserData,
    utils::{Physical, Point, Scale},
    wayland::compositor::with_states,
};

use super::{applied_since, build, Basis, Element, Entry, Kept, OutputScene, SceneStats};
use crate::render::VkRenderer;

/// The frame's elements, built from `scene`'s kept ones (drawn on `kept`'s
/// basis), if nothing the frame depends on changed but the states of
/// surfaces with an element; what each was built from is left in
/// `scene.built`. `None`, with the kept elements untouched, when the frame
/// must walk. Takes the state lock of each surface with an element, one at
/// a time.
pub(super) fn frame(
    scene: &mut OutputScene,
    renderer: &mut VkRenderer,
    kept: &Basis,
    basis: &Basis,
    scale: Scale<f64>,
) -> Option<Vec<Element>> {
    let unchanged =
        !kept.popups && kept.shape == basis.shape && kept.output == basis.output && kept.windows == basis.windows;
    if !unchanged || scene.kept.elements.iter().any(Option::is_none) {
        return None;
    }
    let changed = changed_entries(&scene.kept, kept.applied)?;
    let mut rebuilt = Vec::with_capacity(changed.len());
    for &at in &changed {
        rebuilt.push((at, rebuild(renderer, &scene.kept.entries[at], scale, basis)?));
    }

    let Kept { mut entries, elements } = std::mem::take(&mut scene.kept);
    let mut reused = Vec::with_capacity(elements.len());
    reused.extend(elements.into_iter().flatten());
    let mut elements = reused;
    for (at, (entry, element)) in rebuilt {
        entries[at] = entry;
        elements[at] = element;
    }
    scene.stats.add(SceneStats {
        elements_built: changed.len() as u64,
        elements_reused: (elements.len() - changed.len()) as u64,
        walks_skipped: 1,
    });
    scene.built = entries;
    Some(elements)
}

/// The kept entries whose surface had states applied after state number
/// `since`, if every one of those went to a surface with a kept entry and
/// is still remembered.
fn changed_entries(kept: &Kept, since: u64) -> Option<Vec<usize>> {
    let mut changed = Vec::new();
    let all_kept = applied_since(since, |id| {
        let Some(at) = kept
            .entries
            .iter()
            .position(|e| e.key.as_ref().is_some_and(|k| &k.surface == id))
        else {
            return false;
        };
        if !changed.contains(&at) {
            changed.push(at);
        }
        true
    });
    all_kept.then_some(changed)
}

/// `old`'s surface's element built again at the same place, if it still
/// has a view at the same offset, is on the output as much as before, and
/// can be built. Takes the surface's state lock.
fn rebuild(renderer: &mut VkRenderer, old: &Entry, scale: Scale<f64>, basis: &Basis) -> Option<(Entry, Element)> {
    let key = old.key.as_ref()?;
    let location: Point<f64, Physical> = key.location;
    with_states(&old.surface, |states| {
        let renderer_state = states.data_map.get::<RendererSurfaceStateUserData>()?.lock().ok()?;
        let view = renderer_state.view()?;
        if view.offset != key.view.offset {
            return None;
        }
        let entry = Entry::read(
            &old.surface,
            states,
            &renderer_state,
            view,
            location,
            scale,
            basis.output,
        );
        // build takes the renderer state's lock itself.
        drop(renderer_state);
        if entry.on_output != old.on_output {
            return None;
        }
        let element = build(renderer, &old.surface, states, location)?;
        Some((entry, element))
    })
}
