//! The flows layer: each command of the CLI as a list of steps, top to bottom. Flows use steps,
//! clients and the checked config; `rollback` never imports `promote`.

pub mod edit;
pub mod guard;
pub mod promote;
pub mod rollback;
pub mod status;
pub mod verify;
