//! wp_presentation: the global only; feedback is sent by the backend after
//! each frame (see `backend::headless`), using the same clock id.

use smithay::delegate_presentation;

use crate::state::State;

delegate_presentation!(State);
