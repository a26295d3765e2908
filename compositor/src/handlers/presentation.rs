//! wp_presentation: the global only; feedback is sent by the backend after
//! each frame (`backend::frame_shown`, from either backend), using the
//! backend's clock id.

use smithay::delegate_presentation;

use crate::state::State;

delegate_presentation!(State);
