//! `wp_color_representation_v1` for [`State`]: the protocol is dispatched by
//! `crate::protocols::color_representation`, which needs nothing of the
//! state; the renderer reads what it records when it imports a surface's
//! buffer.

use crate::state::State;

crate::delegate_color_representation!(State);
