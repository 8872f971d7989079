import CoreLocation

/// Positions for stadium mode from CoreLocation. The core calls `startUpdates` when stadium mode
/// is turned on and `stopUpdates` when it is turned off, so authorization is asked (when in use)
/// only then. With `background: true` it keeps receiving fixes in the background while stadium
/// mode is on, which needs the `location` background mode in the app's Info.plist (and shows the
/// blue location indicator); background updates are switched off again in `stopUpdates`.
///
/// `pausesLocationUpdatesAutomatically` is false on purpose: at an event people stand or sit
/// still for long stretches, which is exactly when CoreLocation's automatic pause would stop
/// updates, and an app paused in the background cannot resume them until it is opened again.
/// Battery is kept in check by the 10 m accuracy and distance filter instead, and by Low Power
/// Mode (`setLowPower`, from `PowerSaver`): then about 100 m accuracy, a 50 m distance filter and
/// at most one fix a minute to the core (CoreLocation has no update interval of its own).
public final class CoreLocationProvider: NSObject, LocationProvider, CLLocationManagerDelegate, @unchecked Sendable {
    private let manager = CLLocationManager()
    private let background: Bool
    /// Touched on the main queue only, where the manager calls its delegate.
    private var sink: LocationSink?
    private var lowPower = false
    /// When the last fix went to the sink (main queue only).
    private var lastFix: Date?
    /// The location is refused (now, or in the prompt stadium mode brought up): called on the
    /// main queue, for the app to turn stadium mode off and say why (the core only logs it).
    public var onDenied: (() -> Void)?

    /// Whether the location is refused for this app (only Settings can allow it now).
    public var denied: Bool {
        [.denied, .restricted].contains(manager.authorizationStatus)
    }

    /// Create it on the main thread (CLLocationManager needs a run loop).
    public init(background: Bool = false) {
        self.background = background
        super.init()
        manager.delegate = self
        manager.desiredAccuracy = kCLLocationAccuracyNearestTenMeters
        manager.distanceFilter = 10
        manager.pausesLocationUpdatesAutomatically = false
        manager.activityType = .other
    }

    public func startUpdates(sink: LocationSink) {
        DispatchQueue.main.async { [self] in
            self.sink = sink
            startIfAuthorized()
        }
    }

    /// Low Power Mode is `on` or off: coarser updates while on (updates under way too).
    public func setLowPower(_ on: Bool) {
        DispatchQueue.main.async { [self] in
            lowPower = on
            manager.desiredAccuracy = on ? kCLLocationAccuracyHundredMeters : kCLLocationAccuracyNearestTenMeters
            manager.distanceFilter = on ? 50 : 10
        }
    }

    public func stopUpdates() {
        DispatchQueue.main.async { [self] in
            sink = nil
            manager.stopUpdatingLocation()
            manager.allowsBackgroundLocationUpdates = false
            manager.showsBackgroundLocationIndicator = false
        }
    }

    private func startIfAuthorized() {
        guard let sink else { return }
        switch manager.authorizationStatus {
        case .authorizedAlways, .authorizedWhenInUse:
            manager.allowsBackgroundLocationUpdates = background
            manager.showsBackgroundLocationIndicator = background
            manager.startUpdatingLocation()
        case .notDetermined:
            // The answer arrives in locationManagerDidChangeAuthorization.
            manager.requestWhenInUseAuthorization()
        case .denied, .restricted:
            sink.onError(msg: "location permission denied")
            onDenied?()
        @unknown default:
            sink.onError(msg: "unknown location authorization")
        }
    }

    public func locationManagerDidChangeAuthorization(_ manager: CLLocationManager) {
        startIfAuthorized()
    }

    public func locationManager(_ manager: CLLocationManager, didUpdateLocations locations: [CLLocation]) {
        // A negative accuracy marks an invalid fix.
        guard let sink, let fix = locations.last, fix.horizontalAccuracy >= 0 else { return }
        if lowPower, let last = lastFix, fix.timestamp.timeIntervalSince(last) < 60 { return }
        lastFix = fix.timestamp
        sink.onFix(fix: LocationFix(
            latitude: fix.coordinate.latitude,
            longitude: fix.coordinate.longitude,
            accuracyM: fix.horizontalAccuracy
        ))
    }

    public func locationManager(_ manager: CLLocationManager, didFailWithError error: Error) {
        // locationUnknown is transient: CoreLocation keeps trying.
        if (error as? CLError)?.code == .locationUnknown { return }
        sink?.onError(msg: error.localizedDescription)
    }
}
