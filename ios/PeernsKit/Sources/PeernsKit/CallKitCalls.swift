import Foundation

/// How a PeerNS call's end is told to CallKit (pure; `CallKitController` turns it into
/// `CXCallEndedReason` or a `CXEndCallAction`). Mirrors nothing on Android, which rings with a
/// notification, not a system call UI.
public enum CallKitEnd: Equatable {
    /// We ended it (hung up, declined, cancelled): CallKit gets an end action of ours.
    case ours
    /// The peer ended it: `.remoteEnded`.
    case remoteEnded
    /// Nobody answered, or the caller gave up before we answered: `.unanswered`.
    case unanswered
    /// The link failed or the peer was never reached: `.failed`.
    case failed
    /// Glare: our call was replaced by the peer's call to us, which goes on under the same
    /// CallKit call.
    case replaced

    /// The end of a call from the core's reason (`CallStatus.reason`: `hangup`, `peer_hangup`,
    /// `declined`, `busy`, `cancelled`, `no_answer`, `unreachable`, `lost`, `replaced`).
    public static func of(reason: String?, outgoing: Bool) -> CallKitEnd {
        switch reason {
        case "hangup": return .ours
        case "peer_hangup": return .remoteEnded
        // Outgoing: the peer declined or was busy. Incoming: we declined.
        case "declined": return outgoing ? .remoteEnded : .ours
        case "busy": return outgoing ? .remoteEnded : .ours
        // Outgoing: we gave up. Incoming: the caller did, a missed call.
        case "cancelled": return outgoing ? .ours : .unanswered
        case "no_answer": return .unanswered
        case "replaced": return .replaced
        default: return .failed // unreachable, lost, or a reason added later
        }
    }
}

/// PeerNS call IDs ↔ CallKit UUIDs (pure). A UUID is known before its call ID for a call we
/// start (`CXStartCallAction` comes first), for a call reported for a VoIP push (the call arrives
/// over signaling later) and for the peer's call that replaced ours in glare; those wait here by
/// the contact's fingerprint (or, for a push, for any incoming call) until the call's first event.
/// Mirrors nothing on Android.
public struct CallKitCalls {
    private var uuidOf: [String: UUID] = [:]
    /// CallKit calls we started (a replacing call of the peer keeps its UUID, so this is by UUID).
    private var outgoing: Set<UUID> = []
    /// UUIDs waiting for the ID of a call with this contact.
    private var waiting: [String: UUID] = [:]
    /// The UUID reported for a VoIP push, waiting for an incoming call.
    public private(set) var pushed: UUID?

    public init() {}

    public func uuid(of call: String) -> UUID? { uuidOf[call] }

    public func call(of uuid: UUID) -> String? { uuidOf.first { $0.value == uuid }?.key }

    public func isOutgoing(_ uuid: UUID) -> Bool { outgoing.contains(uuid) }

    /// Whether `uuid` is a call here, known or waiting.
    public func contains(_ uuid: UUID) -> Bool {
        uuidOf.values.contains(uuid) || waiting.values.contains(uuid) || pushed == uuid
    }

    /// A call to `fingerprint` is being started under `uuid`.
    public mutating func starting(_ uuid: UUID, fingerprint: String) {
        waiting[fingerprint] = uuid
        outgoing.insert(uuid)
    }

    /// A VoIP push was reported under `uuid`: the next incoming call takes it.
    public mutating func reportedPush(_ uuid: UUID) {
        pushed = uuid
    }

    /// `node.startCall` returned `call` for the start under `uuid` (already bound by an event of
    /// the call, or still waiting; nothing if the call ended meanwhile).
    public mutating func started(_ call: String, uuid: UUID, fingerprint: String) {
        guard waiting[fingerprint] == uuid else { return }
        waiting[fingerprint] = nil
        uuidOf[call] = uuid
    }

    /// An incoming call rings: its UUID, and whether CallKit must be told (false when the
    /// call takes the UUID of a VoIP push, reported already).
    public mutating func incoming(_ call: String) -> (uuid: UUID, report: Bool) {
        if let known = uuidOf[call] { return (known, false) }
        if let push = pushed {
            pushed = nil
            uuidOf[call] = push
            return (push, false)
        }
        let uuid = UUID()
        uuidOf[call] = uuid
        return (uuid, true)
    }

    /// A state of `call` with `fingerprint`: its UUID, taking a waiting one for a call not seen
    /// before (ours, before `startCall` returned, or the peer's call that replaced ours).
    public mutating func state(_ call: String, fingerprint: String) -> UUID? {
        if let known = uuidOf[call] { return known }
        guard let uuid = waiting.removeValue(forKey: fingerprint) else { return nil }
        uuidOf[call] = uuid
        return uuid
    }

    /// `call` ended: how to tell CallKit, and under which UUID (nil: not a CallKit call). A
    /// replaced call's UUID waits for the peer's call.
    public mutating func ended(_ call: String, fingerprint: String, reason: String?) -> (uuid: UUID, end: CallKitEnd)? {
        // A call ended before its first other event takes the UUID waiting for it.
        guard let uuid = uuidOf.removeValue(forKey: call) ?? waiting.removeValue(forKey: fingerprint) else { return nil }
        let end = CallKitEnd.of(reason: reason, outgoing: outgoing.contains(uuid))
        if end == .replaced { waiting[fingerprint] = uuid } else { outgoing.remove(uuid) }
        return (uuid, end)
    }

    /// Forgets `uuid` (CallKit ended it, or refused to report it).
    public mutating func remove(_ uuid: UUID) {
        for (call, u) in uuidOf where u == uuid { uuidOf[call] = nil }
        outgoing.remove(uuid)
        for (fingerprint, u) in waiting where u == uuid { waiting[fingerprint] = nil }
        if pushed == uuid { pushed = nil }
    }

    /// Every UUID here, known or waiting (to end them all when the node stops).
    public var all: [UUID] {
        Array(Set(Array(uuidOf.values) + Array(waiting.values) + (pushed.map { [$0] } ?? [])))
    }
}
