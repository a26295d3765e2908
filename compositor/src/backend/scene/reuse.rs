//! A frame that starts from the last frame's elements instead of walking
//! the space (the scene's module docs: frames without a walk).

use smithay::{
    backend::renderer::utils::RendererSurfaceStateUserData,
    utils::{Physical, Point, Scale},
    wayland::compositor::with_states,
};

use super::{applied_states, build, Basis, Element, Entry, Kept, OutputScene, SceneStats};
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
    let changed = changed_entries(&scene.kept, basis.applied.wrapping_sub(kept.applied))?;
    let mut rebuilt = Vec::with_capacity(changed.len());
    for &at in &changed {
        rebuilt.push((at, rebuild(renderer, &scene.kept.entries[at], scale, basis)?));
    }

    let Kept { mut entries, elements } = std::mem::take(&mut scene.kept);
    let mut elements: Vec<Element> = elements.into_iter().flatten().collect();
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

/// The kept entries whose surface had states applied since they were
/// built, if those were all `applied` states applied since; `None` if one
/// went elsewhere (a surface without an element). No surface is gone: a
/// destroyed surface changed the shape.
fn changed_entries(kept: &Kept, applied: u64) -> Option<Vec<usize>> {
    let mut changed = Vec::new();
    let mut seen = 0u64;
    for (at, entry) in kept.entries.iter().enumerate() {
        let key = entry.key.as_ref()?;
        let now = with_states(&entry.surface, applied_states)?;
        if now != key.applied {
            seen = seen.wrapping_add(now.wrapping_sub(key.applied));
            changed.push(at);
        }
    }
    (seen == applied).then_some(changed)
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
