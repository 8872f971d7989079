//! Stadium mode's geohash cells: which precision-7 cells (about 150 m) a phone enrolls in, and a
//! hysteresis tracker so a phone standing on a cell border does not flap. Pure: no I/O, no clock.
//!
//! Border problem: two phones a few metres apart can sit in different cells. A phone therefore
//! enrolls in the cells of its own position and of the four points at the discovery radius `r`
//! north, south, east and west of it ([`enrollment_cells`]).
//!
//! Guarantee (tested below): if two phones are at most `r` apart, both enroll with radius `r`,
//! and precision-7 cells are at least `r` wide and tall where they stand, their enrollment sets
//! share a cell. Cells are 152.7 m tall and 152.7 m · cos(latitude) wide, so the condition is
//! `r ≤ 152.7 m · cos(latitude)`: latitudes up to about ±78.6° for the default 30 m.
//!
//! Why: with cells at least `r` across, at most one vertical and one horizontal border lie
//! between the phones. Across one border, the point of either phone that looks at the other
//! crosses it and lands in the other phone's cell. Across a corner, say A south-west of B, A's
//! north point and B's west point both land in the north-west cell, and A's east point and B's
//! south point both in the south-east cell, unless the phones are more than `r` apart; either
//! pair alone would do. So any three of the four points already give the guarantee; the fourth
//! is a spare. Where cells are narrower than `r` (near the poles) an east/west point can jump
//! over a whole cell and the guarantee is lost; enrollment still works, with up to five cells.

use std::collections::BTreeSet;

/// Geohash length of a stadium cell: 7 characters, about 153 m × 153 m · cos(latitude).
pub const CELL_PRECISION: usize = 7;

/// Default discovery radius in metres; callers may choose another.
pub const DEFAULT_RADIUS_M: f64 = 30.0;

/// Mean Earth radius in metres (IUGG), used for every distance here.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Highest latitude handed to `geohash::encode`. geohash 0.13 maps latitudes within about
/// 1e-14° of +90 (90 itself included) into the south-pole row, so we stay 1e-9° (0.1 mm) below.
const MAX_ENCODE_LAT: f64 = 90.0 - 1e-9;

/// Longest geohash `geohash::decode_bbox` accepts.
const MAX_GEOHASH_LEN: usize = 12;

/// Why a coordinate was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// Latitude or longitude is NaN or infinite.
    #[error("coordinate is not a finite number")]
    NotFinite,
    /// Latitude outside [-90, 90].
    #[error("latitude {0} is outside [-90, 90]")]
    Latitude(f64),
    /// Longitude outside [-180, 180].
    #[error("longitude {0} is outside [-180, 180]")]
    Longitude(f64),
}

/// A position in degrees (WGS 84 as reported by phones, treated as a sphere here).
///
/// [`GeoPoint::new`] validates and keeps longitude in [-180, 180) (180 becomes -180, the same
/// meridian). Points built from the public fields are taken as they are; every function here
/// clamps latitude into [-90, 90], wraps longitude and reads NaN as 0 rather than panicking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Latitude in degrees, -90 (south pole) to 90 (north pole).
    pub lat: f64,
    /// Longitude in degrees, -180 to 180 (exclusive) east of Greenwich.
    pub lon: f64,
}

impl GeoPoint {
    /// A validated point: finite, latitude in [-90, 90], longitude in [-180, 180] (180 is
    /// stored as -180).
    pub fn new(lat: f64, lon: f64) -> Result<Self, GeoError> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(GeoError::NotFinite);
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::Latitude(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(GeoError::Longitude(lon));
        }
        Ok(Self {
            lat,
            lon: wrap_lon(lon),
        })
    }

    /// Latitude clamped into [-90, 90], longitude wrapped into [-180, 180), NaN read as 0.
    fn normalized(self) -> Self {
        let lat = if self.lat.is_nan() {
            0.0
        } else {
            self.lat.clamp(-90.0, 90.0)
        };
        Self {
            lat,
            lon: wrap_lon(self.lon),
        }
    }
}

/// Wraps a longitude into [-180, 180); a non-finite one becomes 0.
fn wrap_lon(lon: f64) -> f64 {
    if (-180.0..180.0).contains(&lon) {
        return lon;
    }
    if !lon.is_finite() {
        return 0.0;
    }
    let wrapped = (lon + 180.0).rem_euclid(360.0) - 180.0;
    // rem_euclid may round up to the divisor itself.
    if wrapped >= 180.0 { -180.0 } else { wrapped }
}

/// The smaller angle in degrees between two longitudes, going either way round.
fn lon_gap(a: f64, b: f64) -> f64 {
    let d = (a - b).abs() % 360.0;
    d.min(360.0 - d)
}

/// A length in metres made safe: NaN, infinite or negative becomes 0.
fn non_negative(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

/// Great-circle (haversine) distance in metres on a sphere of radius [`EARTH_RADIUS_M`].
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (phi1, phi2) = (a.lat.to_radians(), b.lat.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (b.lon - a.lon).to_radians() / 2.0;
    let h = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// The point `distance_m` metres from `p` along the great circle leaving it at `bearing_deg`
/// (clockwise from north). Longitude wraps across the antimeridian; a path over a pole comes
/// down the other side (latitude stays in range, longitude shifts by 180°). A non-finite bearing
/// or distance returns `p` unchanged.
pub fn destination(p: GeoPoint, bearing_deg: f64, distance_m: f64) -> GeoPoint {
    let p = p.normalized();
    if !bearing_deg.is_finite() || !distance_m.is_finite() {
        return p;
    }
    let delta = distance_m / EARTH_RADIUS_M;
    let theta = bearing_deg.to_radians();
    let (phi1, lambda1) = (p.lat.to_radians(), p.lon.to_radians());
    let sin_phi2 =
        (phi1.sin() * delta.cos() + phi1.cos() * delta.sin() * theta.cos()).clamp(-1.0, 1.0);
    let phi2 = sin_phi2.asin();
    let lambda2 = lambda1
        + (theta.sin() * delta.sin() * phi1.cos()).atan2(delta.cos() - phi1.sin() * sin_phi2);
    GeoPoint {
        lat: phi2.to_degrees().clamp(-90.0, 90.0),
        lon: wrap_lon(lambda2.to_degrees()),
    }
}

/// The precision-7 geohash cell containing `p` (lowercase, [`CELL_PRECISION`] characters).
/// Longitude 180 falls in the cell at -180; latitude 90 in the top row.
pub fn cell_of(p: GeoPoint) -> String {
    let p = p.normalized();
    let coord = geohash::Coord {
        x: p.lon,
        y: p.lat.min(MAX_ENCODE_LAT),
    };
    match geohash::encode(coord, CELL_PRECISION) {
        Ok(cell) => cell,
        // Unreachable: the coordinate is in range and the length is valid. Fall back to the
        // cell at (0, 0) rather than panic.
        Err(_) => String::from("s000000"),
    }
}

/// The cells a phone at `p` enrolls in: the cells of `p` and of the points `radius_m` north,
/// south, east and west of it, without repeats, `p`'s own cell first, then the others in N, S,
/// E, W order of first appearance. One to three cells below about 66.8° latitude with the default
/// radius, at most five anywhere. A NaN, infinite or negative radius counts as 0 (own cell only).
///
/// See the module documentation for the guarantee this gives two phones within `radius_m`.
pub fn enrollment_cells(p: GeoPoint, radius_m: f64) -> Vec<String> {
    cells_around(p, radius_m, &[0.0, 180.0, 90.0, 270.0])
}

/// The cells of `p` and of the points `radius_m` from it at `bearings`, without repeats, in
/// that order.
fn cells_around(p: GeoPoint, radius_m: f64, bearings: &[f64]) -> Vec<String> {
    let p = p.normalized();
    let radius_m = non_negative(radius_m);
    let mut cells = vec![cell_of(p)];
    for &bearing in bearings {
        let cell = cell_of(destination(p, bearing, radius_m));
        if !cells.contains(&cell) {
            cells.push(cell);
        }
    }
    cells
}

/// Distance in metres from `p` to the nearest point of geohash `cell` (any length 1–12), 0
/// inside it; `None` if `cell` is not a geohash. Approximation: latitude and longitude are
/// clamped into the cell's box separately (longitude the short way round), then haversine;
/// this never underestimates and is within centimetres for stadium cells away from the poles.
pub fn distance_to_cell_m(p: GeoPoint, cell: &str) -> Option<f64> {
    if cell.is_empty() || cell.len() > MAX_GEOHASH_LEN || !cell.bytes().all(is_geohash_byte) {
        // decode_bbox("") panics in geohash 0.13; the other cases it refuses.
        return None;
    }
    let rect = geohash::decode_bbox(cell).ok()?;
    let (min, max) = (rect.min(), rect.max());
    let p = p.normalized();
    let lat = p.lat.max(min.y).min(max.y);
    let lon = if (min.x..=max.x).contains(&p.lon) {
        p.lon
    } else if lon_gap(p.lon, min.x) <= lon_gap(p.lon, max.x) {
        min.x
    } else {
        max.x
    };
    Some(distance_m(p, GeoPoint { lat, lon }))
}

/// Whether `b` is in the geohash base32 alphabet: 0-9 and b-z without i, l, o (lowercase).
fn is_geohash_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'b'..=b'h' | b'j' | b'k' | b'm' | b'n' | b'p'..=b'z')
}

/// Whether `cell` is a stadium cell name: exactly [`CELL_PRECISION`] characters of the geohash
/// alphabet. Use it on cells received from peers.
pub fn namespace_cell_valid(cell: &str) -> bool {
    cell.len() == CELL_PRECISION && cell.bytes().all(is_geohash_byte)
}

/// Settings of a [`CellTracker`]. Lengths are metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Discovery radius handed to [`enrollment_cells`].
    pub radius_m: f64,
    /// Extra distance beyond `radius_m` before an enrolled cell is left.
    pub hysteresis_m: f64,
    /// Fixes reported with a worse (larger) accuracy are ignored.
    pub max_accuracy_m: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            radius_m: DEFAULT_RADIUS_M,
            hysteresis_m: 25.0,
            max_accuracy_m: 1000.0,
        }
    }
}

/// What to do after a fix: cells to join (in [`enrollment_cells`] order) and to leave (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellChange {
    /// Cells newly enrolled in.
    pub join: Vec<String>,
    /// Cells no longer enrolled in.
    pub leave: Vec<String>,
}

impl CellChange {
    /// True when there is nothing to join or leave.
    pub fn is_empty(&self) -> bool {
        self.join.is_empty() && self.leave.is_empty()
    }
}

/// The cells a phone is enrolled in, updated from location fixes with hysteresis: every cell of
/// [`enrollment_cells`] is joined at once, but a cell is left only when the phone is more than
/// `radius_m + hysteresis_m` from it, so a phone standing on a border does not flap.
#[derive(Debug, Clone)]
pub struct CellTracker {
    radius_m: f64,
    hysteresis_m: f64,
    max_accuracy_m: f64,
    current: BTreeSet<String>,
}

impl Default for CellTracker {
    fn default() -> Self {
        Self::new(TrackerConfig::default())
    }
}

impl CellTracker {
    /// An empty tracker. A NaN, infinite or negative radius or hysteresis counts as 0; a NaN or
    /// negative `max_accuracy_m` makes every fix ignored.
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            radius_m: non_negative(config.radius_m),
            hysteresis_m: non_negative(config.hysteresis_m),
            max_accuracy_m: config.max_accuracy_m,
            current: BTreeSet::new(),
        }
    }

    /// The settings in effect (after sanitising).
    pub fn config(&self) -> TrackerConfig {
        TrackerConfig {
            radius_m: self.radius_m,
            hysteresis_m: self.hysteresis_m,
            max_accuracy_m: self.max_accuracy_m,
        }
    }

    /// Feeds a location fix with its reported accuracy (metres, as the OS gives it). A fix that
    /// is invalid, or whose accuracy is not finite, negative or worse than `max_accuracy_m`,
    /// changes nothing. Otherwise every enrollment cell of `fix` not yet current is joined, and a
    /// current cell is left when `fix` is more than `radius_m + hysteresis_m` from it.
    pub fn update(&mut self, fix: GeoPoint, accuracy_m: f64) -> CellChange {
        let accurate =
            accuracy_m.is_finite() && accuracy_m >= 0.0 && accuracy_m <= self.max_accuracy_m;
        let fix = match GeoPoint::new(fix.lat, fix.lon) {
            Ok(fix) if accurate => fix,
            _ => return CellChange::default(),
        };
        let wanted = enrollment_cells(fix, self.radius_m);
        let keep_within = self.radius_m + self.hysteresis_m;
        let leave: Vec<String> = self
            .current
            .iter()
            .filter(|cell| {
                !wanted.contains(cell)
                    && distance_to_cell_m(fix, cell).is_none_or(|d| d > keep_within)
            })
            .cloned()
            .collect();
        for cell in &leave {
            self.current.remove(cell);
        }
        let join = wanted
            .into_iter()
            .filter(|cell| self.current.insert(cell.clone()))
            .collect();
        CellChange { join, leave }
    }

    /// The cells enrolled in now, sorted.
    pub fn cells(&self) -> impl Iterator<Item = &str> + '_ {
        self.current.iter().map(String::as_str)
    }

    /// Leaves everything (stadium mode stops): returns all current cells, sorted, and empties
    /// the tracker.
    pub fn clear(&mut self) -> Vec<String> {
        std::mem::take(&mut self.current).into_iter().collect()
    }
}

#[cfg(test)]
#[path = "geo_tests.rs"]
mod tests;
