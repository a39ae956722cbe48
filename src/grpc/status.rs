//! The one table from service errors to gRPC status codes.

use tonic::Status;

use crate::error::Error;

pub fn to_status(e: Error) -> Status {
    match e {
        Error::InvalidArgument(m) => Status::invalid_argument(m),
        Error::NotFound(m) => Status::not_found(m),
        Error::AlreadyExists(m) => Status::already_exists(m),
        Error::FailedPrecondition(m) => Status::failed_precondition(m),
        Error::ResourceExhausted(m) => Status::resource_exhausted(m),
        Error::PermissionDenied(m) => Status::permission_denied(m),
        Error::Unauthenticated(m) => Status::unauthenticated(m),
        Error::DeadlineExceeded(m) => Status::deadline_exceeded(m),
        Error::Unavailable(m) => Status::unavailable(m),
        Error::Internal(m) => Status::internal(m),
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        to_status(e)
    }
}
