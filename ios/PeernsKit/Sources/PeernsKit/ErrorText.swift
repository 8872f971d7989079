import Foundation

/// What to show the user for `error`: the library's own message for a `PeernsError` ("not
/// allowed: only admins remove"), as Kotlin shows the exception's message, not the enum's
/// reflection (`NotAllowed(msg: "…")`); any other error's description. Never compiled
/// (ios/README.md).
public func errorText(_ error: Error) -> String {
    guard let e = error as? PeernsError else { return error.localizedDescription }
    switch e {
    case let .InvalidInput(msg), let .Network(msg), let .ProfileInUse(msg), let .Signaling(msg),
         let .Storage(msg), let .KeyLost(msg), let .Crypto(msg), let .NotAllowed(msg),
         let .KeyMismatch(msg), let .NotFound(msg), let .Timeout(msg), let .Waiting(msg),
         let .Closed(msg), let .Cancelled(msg), let .Internal(msg):
        return msg
    }
}
