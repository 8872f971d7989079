use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Height of a precision-7 cell in metres (and its width at the equator).
fn cell_height_m() -> f64 {
    EARTH_RADIUS_M * (180.0 / f64::from(1u32 << 17)).to_radians()
}

fn pt(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::new(lat, lon).unwrap()
}

fn bbox(cell: &str) -> (f64, f64, f64, f64) {
    let r = geohash::decode_bbox(cell).unwrap();
    (r.min().y, r.max().y, r.min().x, r.max().x)
}

fn share(a: GeoPoint, b: GeoPoint, radius_m: f64) -> bool {
    let cells_b = enrollment_cells(b, radius_m);
    enrollment_cells(a, radius_m)
        .iter()
        .any(|c| cells_b.contains(c))
}

/// Metres per degree of latitude (and of longitude on the equator).
const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

fn assert_close(actual: f64, expected: f64, tol: f64) {
    assert!(
        (actual - expected).abs() <= tol,
        "{actual} is not within {tol} of {expected}"
    );
}

/// Own cell first, 1 to 5 cells, no repeats, all valid names.
fn assert_well_formed(cells: &[String], p: GeoPoint) {
    assert!((1..=5).contains(&cells.len()), "{cells:?}");
    assert_eq!(cells[0], cell_of(p));
    for (i, cell) in cells.iter().enumerate() {
        assert!(namespace_cell_valid(cell), "{cell}");
        assert!(!cells[..i].contains(cell), "repeated {cell} in {cells:?}");
    }
}

fn sorted(mut cells: Vec<String>) -> Vec<String> {
    cells.sort();
    cells
}

/// A Paris cell, the point on its east border at mid-height, and its east neighbour.
fn east_border() -> (String, GeoPoint, String) {
    let cell = cell_of(pt(48.8566, 2.3522));
    let (s, n, _, e) = bbox(&cell);
    let border = pt((s + n) / 2.0, e);
    let east = geohash::neighbor(&cell, geohash::Direction::E).unwrap();
    assert_eq!(cell_of(destination(border, 90.0, 1.0)), east);
    (cell, border, east)
}

#[test]
fn new_validates_and_normalises() {
    assert_eq!(GeoPoint::new(f64::NAN, 0.0), Err(GeoError::NotFinite));
    assert_eq!(GeoPoint::new(0.0, f64::INFINITY), Err(GeoError::NotFinite));
    assert_eq!(GeoPoint::new(90.5, 0.0), Err(GeoError::Latitude(90.5)));
    assert_eq!(GeoPoint::new(-90.5, 0.0), Err(GeoError::Latitude(-90.5)));
    assert_eq!(GeoPoint::new(0.0, -180.5), Err(GeoError::Longitude(-180.5)));
    assert_eq!(GeoPoint::new(0.0, 181.0), Err(GeoError::Longitude(181.0)));
    assert_eq!(
        pt(90.0, 180.0),
        GeoPoint {
            lat: 90.0,
            lon: -180.0
        }
    );
    assert_eq!(
        pt(-90.0, -180.0),
        GeoPoint {
            lat: -90.0,
            lon: -180.0
        }
    );
    assert_eq!(
        pt(48.5, 2.25),
        GeoPoint {
            lat: 48.5,
            lon: 2.25
        }
    );
}

#[test]
fn distance_known_values() {
    let pi_r = std::f64::consts::PI * EARTH_RADIUS_M;
    assert_eq!(distance_m(pt(10.0, 20.0), pt(10.0, 20.0)), 0.0);
    assert_close(distance_m(pt(0.0, 0.0), pt(1.0, 0.0)), M_PER_DEG, 1e-6);
    assert_close(distance_m(pt(0.0, 0.0), pt(0.0, 1.0)), M_PER_DEG, 1e-6);
    assert_close(distance_m(pt(0.0, 179.5), pt(0.0, -179.5)), M_PER_DEG, 1e-6);
    assert_close(distance_m(pt(90.0, 0.0), pt(-90.0, 0.0)), pi_r, 1e-3);
    assert_close(distance_m(pt(0.0, 0.0), pt(0.0, -180.0)), pi_r, 1e-3);
    let (paris, london) = (pt(48.8566, 2.3522), pt(51.5074, -0.1278));
    assert_close(distance_m(paris, london), 343_556.5, 1.0);
    assert_eq!(distance_m(paris, london), distance_m(london, paris));
}

#[test]
fn destination_round_trips_with_distance() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..2000 {
        let p = pt(
            rng.random_range(-89.0..89.0),
            rng.random_range(-180.0..180.0),
        );
        let d = rng.random_range(0.0..100_000.0);
        let q = destination(p, rng.random_range(-360.0..720.0), d);
        assert!(
            GeoPoint::new(q.lat, q.lon).is_ok() && q.lon < 180.0,
            "{q:?}"
        );
        assert_close(distance_m(p, q), d, 1e-6 * d + 1e-3);
    }
    let p = pt(-33.8688, 151.2093);
    let north = destination(p, 0.0, 1000.0);
    assert_close(north.lat - p.lat, 1000.0 / M_PER_DEG, 1e-12);
    assert_close(north.lon, p.lon, 1e-12);
    let east = destination(pt(0.0, 10.0), 90.0, 1000.0);
    assert_close(east.lon - 10.0, 1000.0 / M_PER_DEG, 1e-12);
    assert_close(east.lat, 0.0, 1e-12);
    assert_eq!(destination(p, 37.0, 0.0), p);
    assert_eq!(destination(p, f64::NAN, 10.0), p);
    assert_eq!(destination(p, 10.0, f64::INFINITY), p);
}

#[test]
fn destination_wraps_the_antimeridian() {
    let p = pt(10.0, 179.9999);
    let q = destination(p, 90.0, 30.0);
    assert!(q.lon < -179.999, "{q:?}");
    assert_close(distance_m(p, q), 30.0, 1e-6);
    let p = pt(-10.0, -179.9999);
    let q = destination(p, 270.0, 30.0);
    assert!(q.lon > 179.999 && q.lon < 180.0, "{q:?}");
    assert_close(distance_m(p, q), 30.0, 1e-6);
    // Half way round the equator from Greenwich: the antimeridian, never +180.
    let q = destination(pt(0.0, 0.0), 90.0, std::f64::consts::PI * EARTH_RADIUS_M);
    assert!(lon_gap(q.lon, 180.0) < 1e-9 && q.lon < 180.0, "{q:?}");
}

#[test]
fn destination_over_the_poles() {
    let p = pt(89.9999, 10.0);
    let to_pole = distance_m(p, pt(90.0, 10.0));
    assert_close(to_pole, 0.0001 * M_PER_DEG, 1e-6);
    let q = destination(p, 0.0, 30.0);
    assert!(q.lat < 90.0, "{q:?}");
    assert_close(q.lon, -170.0, 1e-6);
    assert_close(distance_m(q, pt(90.0, 0.0)), 30.0 - to_pole, 1e-3);
    assert_close(distance_m(p, q), 30.0, 1e-3);

    let p = pt(-89.9999, -100.0);
    let q = destination(p, 180.0, 30.0);
    assert!(q.lat > -90.0, "{q:?}");
    assert_close(q.lon, 80.0, 1e-6);
    assert_close(distance_m(q, pt(-90.0, 0.0)), 30.0 - to_pole, 1e-3);

    // From exactly a pole every bearing leads away from it by the distance.
    for bearing in [0.0, 45.0, 90.0, 180.0, 270.0] {
        let q = destination(pt(90.0, 0.0), bearing, 30.0);
        assert_close((90.0 - q.lat) * M_PER_DEG, 30.0, 1e-3);
        let q = destination(pt(-90.0, 0.0), bearing, 30.0);
        assert_close((q.lat + 90.0) * M_PER_DEG, 30.0, 1e-3);
    }
    // Right round a meridian and back.
    let q = destination(
        pt(0.0, 0.0),
        0.0,
        2.0 * std::f64::consts::PI * EARTH_RADIUS_M,
    );
    assert!(distance_m(q, pt(0.0, 0.0)) < 1e-6, "{q:?}");
}

#[test]
fn cell_of_known_cells_and_edges() {
    assert_eq!(cell_of(pt(0.0, 0.0)), "s000000");
    // geohash's own documented example, "9q60y60rhs", cut to 7.
    assert_eq!(cell_of(pt(35.3003, -120.6623)), "9q60y60");
    assert_eq!(cell_of(pt(10.0, 180.0)), cell_of(pt(10.0, -180.0)));
    assert_eq!(
        cell_of(GeoPoint {
            lat: 10.0,
            lon: 180.0
        }),
        cell_of(pt(10.0, -180.0))
    );
    for lon in [-180.0, -45.0, 0.0, 90.0, 179.9] {
        assert_eq!(
            bbox(&cell_of(pt(90.0, lon))).1,
            90.0,
            "north pole, lon {lon}"
        );
        assert_eq!(
            bbox(&cell_of(pt(-90.0, lon))).0,
            -90.0,
            "south pole, lon {lon}"
        );
    }
    // The quirk MAX_ENCODE_LAT works around: geohash 0.13 puts +90 in the south-pole row.
    // If this starts failing, the crate fixed it and the clamp is merely harmless.
    let raw = geohash::encode(geohash::Coord { x: 0.0, y: 90.0 }, CELL_PRECISION).unwrap();
    assert_eq!(bbox(&raw).0, -90.0);
}

#[test]
fn every_point_lies_in_its_cell() {
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..5000 {
        let p = pt(
            rng.random_range(-90.0..=90.0),
            rng.random_range(-180.0..180.0),
        );
        let cell = cell_of(p);
        assert!(namespace_cell_valid(&cell), "{cell}");
        let (s, n, w, e) = bbox(&cell);
        assert!(
            s <= p.lat && p.lat <= n && w <= p.lon && p.lon <= e,
            "{p:?} {cell}"
        );
        assert_eq!(distance_to_cell_m(p, &cell), Some(0.0));
    }
}

#[test]
fn unvalidated_points_and_radii_do_not_panic() {
    let odd = [
        GeoPoint {
            lat: f64::NAN,
            lon: f64::NAN,
        },
        GeoPoint {
            lat: f64::INFINITY,
            lon: f64::NEG_INFINITY,
        },
        GeoPoint {
            lat: 95.0,
            lon: 540.0,
        },
        GeoPoint {
            lat: -1e308,
            lon: 1e308,
        },
        GeoPoint {
            lat: 45.0,
            lon: -190.0,
        },
    ];
    for p in odd {
        assert!(namespace_cell_valid(&cell_of(p)));
        for radius in [30.0, 0.0, -5.0, f64::NAN, f64::INFINITY, 1e12] {
            let cells = enrollment_cells(p, radius);
            assert!((1..=5).contains(&cells.len()), "{cells:?}");
        }
        for (bearing, d) in [(f64::NAN, 1.0), (1e300, 1e300), (-1e300, -1e300)] {
            let q = destination(p, bearing, d);
            assert!(q.lat.is_finite() && q.lon.is_finite(), "{q:?}");
        }
        assert!(distance_to_cell_m(p, "s000000").is_some());
    }
    assert_eq!(
        cell_of(GeoPoint {
            lat: 45.0,
            lon: -190.0
        }),
        cell_of(pt(45.0, 170.0))
    );
    let p = pt(1.0, 1.0);
    for radius in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        assert_eq!(enrollment_cells(p, radius), vec![cell_of(p)]);
    }
}

#[test]
fn enrollment_order_centre_border_and_corner() {
    let cell = cell_of(pt(48.8566, 2.3522));
    let (s, n, w, e) = bbox(&cell);
    let neighbour = |d| geohash::neighbor(&cell, d).unwrap();
    let centre = pt((s + n) / 2.0, (w + e) / 2.0);
    assert_eq!(
        enrollment_cells(centre, DEFAULT_RADIUS_M),
        vec![cell.clone()]
    );

    let near_east = destination(pt((s + n) / 2.0, e), 270.0, 5.0);
    assert_eq!(
        enrollment_cells(near_east, DEFAULT_RADIUS_M),
        vec![cell.clone(), neighbour(geohash::Direction::E)]
    );
    // Near a corner: own, then N or S, then E or W.
    let near_ne = destination(pt(n, e), 225.0, 5.0);
    assert_eq!(
        enrollment_cells(near_ne, DEFAULT_RADIUS_M),
        vec![
            cell.clone(),
            neighbour(geohash::Direction::N),
            neighbour(geohash::Direction::E)
        ]
    );
    let near_sw = destination(pt(s, w), 45.0, 5.0);
    assert_eq!(
        enrollment_cells(near_sw, DEFAULT_RADIUS_M),
        vec![
            cell.clone(),
            neighbour(geohash::Direction::S),
            neighbour(geohash::Direction::W)
        ]
    );
}

#[test]
fn equator() {
    // Rows meet on the equator: phones 2 m apart across it are in different cells.
    let (a, b) = (pt(1e-5, 10.0003), pt(-1e-5, 10.0003));
    assert_ne!(cell_of(a), cell_of(b));
    assert!(share(a, b, DEFAULT_RADIUS_M));
    let on = pt(0.0, 10.0003);
    let cells = enrollment_cells(on, DEFAULT_RADIUS_M);
    assert_well_formed(&cells, on);
    assert!(cells.iter().any(|c| bbox(c).0 == 0.0));
    assert!(cells.iter().any(|c| bbox(c).1 == 0.0));
    assert_pairs_share(11, DEFAULT_RADIUS_M, |rng| {
        pt(
            rng.random_range(-4e-4..4e-4),
            rng.random_range(-180.0..180.0),
        )
    });
}

#[test]
fn prime_meridian() {
    let (a, b) = (pt(51.4779, -1e-5), pt(51.4779, 1e-5));
    assert_ne!(cell_of(a), cell_of(b));
    assert!(share(a, b, DEFAULT_RADIUS_M));
    assert_pairs_share(12, DEFAULT_RADIUS_M, |rng| {
        pt(rng.random_range(-70.0..70.0), rng.random_range(-5e-4..5e-4))
    });
}

#[test]
fn antimeridian() {
    let a = pt(20.0, 179.99998);
    let b = destination(a, 90.0, 5.0);
    assert!(b.lon < -179.9999, "{b:?}");
    assert_close(distance_m(a, b), 5.0, 1e-6);
    assert_ne!(cell_of(a), cell_of(b));
    assert!(share(a, b, DEFAULT_RADIUS_M));
    let cells = enrollment_cells(a, DEFAULT_RADIUS_M);
    assert_well_formed(&cells, a);
    assert!(cells.iter().any(|c| bbox(c).2 == -180.0), "{cells:?}");
    assert!(cells.iter().any(|c| bbox(c).3 == 180.0), "{cells:?}");
    assert_pairs_share(13, DEFAULT_RADIUS_M, |rng| {
        let lon = rng.random_range(179.9995..180.0005);
        GeoPoint::new(rng.random_range(-70.0..70.0), wrap_lon(lon)).unwrap()
    });
}

#[test]
fn poles() {
    for lat in [89.9999, 90.0, -89.9999, -90.0] {
        for lon in [-180.0, -90.0, 0.0, 45.0, 179.99] {
            let p = pt(lat, lon);
            for radius in [0.0, DEFAULT_RADIUS_M, 150.0, 1000.0] {
                assert_well_formed(&enrollment_cells(p, radius), p);
            }
            // With the default radius every cell is in the polar row.
            for cell in enrollment_cells(p, DEFAULT_RADIUS_M) {
                let (s, n, ..) = bbox(&cell);
                assert!(if lat > 0.0 { n == 90.0 } else { s == -90.0 }, "{cell}");
            }
        }
    }
    // Phones 5 m apart on either side of the north pole: B's cell is where A's north
    // point lands after crossing the pole.
    let a = pt(89.99998, 0.0);
    let b = destination(a, 0.0, 5.0);
    assert!(b.lat < 90.0 && lon_gap(b.lon, 180.0) < 1e-9, "{b:?}");
    assert!(share(a, b, DEFAULT_RADIUS_M));
    let a = pt(-89.99998, 30.0);
    let b = destination(a, 180.0, 5.0);
    assert!(share(a, b, DEFAULT_RADIUS_M));
}

#[test]
fn phones_across_a_cell_corner_share_a_cell() {
    let places = [
        (48.8566, 2.3522),
        (-33.8688, 151.2093),
        (40.7128, -74.006),
        (0.0001, 0.0001),
        (64.1466, -21.9426),
    ];
    for (lat, lon) in places {
        let cell = cell_of(pt(lat, lon));
        let (s, n, w, e) = bbox(&cell);
        for corner in [pt(n, e), pt(n, w), pt(s, e), pt(s, w)] {
            for (bearing, offset) in [(45.0, 2.0), (45.0, 14.0), (135.0, 3.0), (135.0, 10.0)] {
                let a = destination(corner, bearing, offset);
                let b = destination(corner, bearing + 180.0, offset);
                // Diagonal cells: neither row nor column in common.
                assert_ne!(cell_of(a), cell_of(b));
                assert_ne!(cell_of(pt(a.lat, b.lon)), cell_of(a));
                assert_ne!(cell_of(pt(a.lat, b.lon)), cell_of(b));
                assert!(distance_m(a, b) <= DEFAULT_RADIUS_M);
                assert!(share(a, b, DEFAULT_RADIUS_M), "{a:?} {b:?}");
            }
        }
    }
}

#[test]
fn typical_enrollment_is_one_to_three_cells() {
    let mut rng = StdRng::seed_from_u64(42);
    let n = 10_000;
    let mut histogram = [0usize; 6];
    for _ in 0..n {
        let p = pt(
            rng.random_range(-60.0..=60.0),
            rng.random_range(-180.0..180.0),
        );
        histogram[enrollment_cells(p, DEFAULT_RADIUS_M).len()] += 1;
    }
    let total: usize = histogram.iter().enumerate().map(|(k, c)| k * c).sum();
    let mean = total as f64 / n as f64;
    assert!((1.0..=2.5).contains(&mean), "mean {mean}, {histogram:?}");
    // Cells are at least 76 m wide here, more than twice the radius, so the north and south
    // points (or the east and west points) never both leave the own cell.
    assert_eq!(histogram[4] + histogram[5], 0, "{histogram:?}");
    assert!(
        histogram[1] > 0 && histogram[2] > 0 && histogram[3] > 0,
        "{histogram:?}"
    );
}

/// Asserts that `n` random pairs within `radius_m`, the first drawn by `sample`, share a cell.
fn assert_pairs_share(seed: u64, radius_m: f64, sample: impl Fn(&mut StdRng) -> GeoPoint) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..5000 {
        let a = sample(&mut rng);
        let d = radius_m * rng.random::<f64>();
        let b = destination(a, rng.random_range(0.0..360.0), d);
        assert!(
            share(a, b, radius_m),
            "{a:?} {b:?} {d} m apart share no cell"
        );
    }
}

/// The guarantee from the module docs: two phones at most `r` apart, both enrolled with
/// radius `r`, share a cell wherever precision-7 cells are at least `r` wide, i.e. at
/// latitudes up to acos(r / 152.7 m). Radii from 5 m to 150 m, latitudes across that whole
/// band with extra weight near its edge, the equator, Greenwich and the antimeridian,
/// distances with extra weight just under `r`.
#[test]
fn phones_within_radius_share_a_cell_where_cells_are_wide_enough() {
    let mut rng = StdRng::seed_from_u64(2024);
    for radius in [5.0, DEFAULT_RADIUS_M, 75.0, 150.0] {
        // Both phones inside the band.
        let max_lat = (radius / cell_height_m()).acos().to_degrees() - radius / M_PER_DEG;
        for i in 0..20_000u32 {
            let lat = match i % 4 {
                0 | 1 => rng.random_range(-max_lat..=max_lat),
                2 => (max_lat - rng.random_range(0.0..0.5)) * if i % 8 == 2 { 1.0 } else { -1.0 },
                _ => rng.random_range(-1e-3..1e-3),
            };
            let lon = match i % 3 {
                0 => rng.random_range(-180.0..180.0),
                1 => rng.random_range(-1e-3..1e-3),
                _ => wrap_lon(rng.random_range(179.999..180.001)),
            };
            let a = pt(lat, lon);
            let d = if i % 2 == 0 {
                radius * rng.random::<f64>()
            } else {
                radius * rng.random_range(0.9..=1.0)
            };
            let b = destination(a, rng.random_range(0.0..360.0), d);
            assert!(b.lat.abs() <= max_lat + radius / M_PER_DEG);
            assert!(
                share(a, b, radius),
                "r {radius}: {a:?} {b:?} {d} m apart share no cell"
            );
        }
    }
}

/// Any three of the four points already give the guarantee (the fourth is a spare, see the
/// module docs), while two adjacent ones do not: phones straddling a corner can then miss.
#[test]
fn three_of_the_four_points_suffice() {
    let share_with = |a, b, bearings: &[f64]| {
        let cells_b = cells_around(b, DEFAULT_RADIUS_M, bearings);
        cells_around(a, DEFAULT_RADIUS_M, bearings)
            .iter()
            .any(|c| cells_b.contains(c))
    };
    let max_lat = 75.0;
    for skip in [0.0, 180.0, 90.0, 270.0] {
        let bearings: Vec<f64> = [0.0, 180.0, 90.0, 270.0]
            .into_iter()
            .filter(|&b| b != skip)
            .collect();
        let mut rng = StdRng::seed_from_u64(77);
        for _ in 0..10_000 {
            let a = pt(
                rng.random_range(-max_lat..max_lat),
                rng.random_range(-180.0..180.0),
            );
            let d = DEFAULT_RADIUS_M * rng.random::<f64>();
            let b = destination(a, rng.random_range(0.0..360.0), d);
            assert!(share_with(a, b, &bearings), "without {skip}: {a:?} {b:?}");
        }
    }
    // Only north and east: A 5 m south-west of a corner, B 5 m north-east of it.
    let cell = cell_of(pt(48.8566, 2.3522));
    let (_, n, _, e) = bbox(&cell);
    let a = destination(pt(n, e), 225.0, 5.0);
    let b = destination(pt(n, e), 45.0, 5.0);
    assert!(!share_with(a, b, &[0.0, 90.0]));
    assert!(share(a, b, DEFAULT_RADIUS_M));
}

/// ... and not beyond it: at 85° cells are 13.3 m wide, narrower than 30 m, and two phones
/// 20 m apart on a parallel can end up with disjoint cells (east/west points jump cells).
#[test]
fn guarantee_is_lost_where_cells_are_narrower_than_radius() {
    let cell = cell_of(pt(85.0007, 10.0));
    let (s, n, w, _) = bbox(&cell);
    let a = destination(pt((s + n) / 2.0, w), 90.0, 5.0);
    let b = destination(a, 90.0, 20.0);
    assert_close(distance_m(a, b), 20.0, 1e-6);
    assert!(!share(a, b, DEFAULT_RADIUS_M));
    assert_eq!(enrollment_cells(a, DEFAULT_RADIUS_M).len(), 3);
}

#[test]
fn distance_to_cell() {
    let cell = cell_of(pt(48.8566, 2.3522));
    let (s, n, w, e) = bbox(&cell);
    assert_eq!(
        distance_to_cell_m(pt((s + n) / 2.0, (w + e) / 2.0), &cell),
        Some(0.0)
    );
    assert_eq!(distance_to_cell_m(pt(s, w), &cell), Some(0.0));
    let north = destination(pt(n, (w + e) / 2.0), 0.0, 10.0);
    assert_close(distance_to_cell_m(north, &cell).unwrap(), 10.0, 1e-3);
    let west = destination(pt((s + n) / 2.0, w), 270.0, 40.0);
    assert_close(distance_to_cell_m(west, &cell).unwrap(), 40.0, 1e-2);
    let north_east = destination(pt(n, e), 45.0, 20.0);
    assert_close(distance_to_cell_m(north_east, &cell).unwrap(), 20.0, 1e-2);

    // The short way round the antimeridian, both ways.
    let west_edge = cell_of(pt(10.0, -180.0));
    let (s, n, w, _) = bbox(&west_edge);
    assert_eq!(w, -180.0);
    let p = destination(pt((s + n) / 2.0, -180.0), 270.0, 3.0);
    assert!(p.lon > 179.99, "{p:?}");
    assert_close(distance_to_cell_m(p, &west_edge).unwrap(), 3.0, 1e-3);
    let east_edge = cell_of(pt(10.0, 179.9999));
    assert_eq!(bbox(&east_edge).3, 180.0);
    let p = destination(pt((s + n) / 2.0, -180.0), 90.0, 3.0);
    assert_close(distance_to_cell_m(p, &east_edge).unwrap(), 3.0, 1e-3);

    assert_eq!(distance_to_cell_m(pt(0.0, 0.0), "s"), Some(0.0));
    for bad in ["", "a", "s00000i", "S000000", "s0000000000000", "s0000é"] {
        assert_eq!(distance_to_cell_m(pt(0.0, 0.0), bad), None, "{bad:?}");
    }
}

#[test]
fn cell_names_from_peers() {
    for good in [
        "s000000", "u09tvw0", "0123456", "789bcde", "fghjkmn", "pqrstuv", "wxyzzzz",
    ] {
        assert!(namespace_cell_valid(good), "{good}");
    }
    let bad = [
        "",
        "s00000",
        "s0000000",
        "s00000a",
        "s00000i",
        "s00000l",
        "s00000o",
        "S000000",
        "s00000 ",
        "s00000-",
        "s0000\u{0}0",
        "s0000é",
        "s00000é",
    ];
    for bad in bad {
        assert!(!namespace_cell_valid(bad), "{bad:?}");
    }
}

#[test]
fn tracker_config_defaults_and_sanitising() {
    assert_eq!(
        TrackerConfig::default(),
        TrackerConfig {
            radius_m: 30.0,
            hysteresis_m: 25.0,
            max_accuracy_m: 1000.0
        }
    );
    assert_eq!(CellTracker::default().config(), TrackerConfig::default());
    let tracker = CellTracker::new(TrackerConfig {
        radius_m: f64::NAN,
        hysteresis_m: -3.0,
        max_accuracy_m: 50.0,
    });
    assert_eq!(
        tracker.config(),
        TrackerConfig {
            radius_m: 0.0,
            hysteresis_m: 0.0,
            max_accuracy_m: 50.0
        }
    );
    let mut tracker = CellTracker::new(TrackerConfig {
        max_accuracy_m: f64::NAN,
        ..TrackerConfig::default()
    });
    assert!(tracker.update(pt(0.0, 0.0), 0.0).is_empty());
}

#[test]
fn jitter_across_a_border_joins_once_and_never_leaves() {
    let (cell, border, east) = east_border();
    let mut tracker = CellTracker::default();
    let mut rng = StdRng::seed_from_u64(9);
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let fix = destination(
            border,
            rng.random_range(0.0..360.0),
            rng.random_range(0.0..=5.0),
        );
        let change = tracker.update(fix, 8.0);
        if i > 0 {
            assert!(change.is_empty(), "fix {i}: {change:?}");
        }
        joins.extend(change.join);
        leaves.extend(change.leave);
    }
    let both = sorted(vec![cell, east]);
    assert_eq!(sorted(joins), both);
    assert!(leaves.is_empty());
    assert_eq!(tracker.cells().collect::<Vec<_>>(), both);

    // 200 m west, both old cells are far beyond radius + hysteresis.
    let far = destination(border, 270.0, 200.0);
    let change = tracker.update(far, 8.0);
    assert_eq!(change.leave, both);
    assert_eq!(change.join, enrollment_cells(far, DEFAULT_RADIUS_M));
    assert_eq!(
        tracker.cells().collect::<Vec<_>>(),
        sorted(enrollment_cells(far, DEFAULT_RADIUS_M))
    );
}

#[test]
fn a_cell_is_left_only_beyond_radius_plus_hysteresis() {
    let (cell, border, east) = east_border();
    let mut tracker = CellTracker::default();
    let at = |m: f64| destination(border, 270.0, m);
    assert_eq!(
        tracker.update(at(10.0), 5.0).join,
        vec![cell.clone(), east.clone()]
    );
    // 40 m and 54 m from `east`: no longer enrollment cells, but within 30 + 25 m.
    assert!(tracker.update(at(40.0), 5.0).is_empty());
    assert!(tracker.update(at(54.0), 5.0).is_empty());
    let change = tracker.update(at(56.0), 5.0);
    assert_eq!(
        change,
        CellChange {
            join: vec![],
            leave: vec![east.clone()]
        }
    );
    // Back within the radius: joined again.
    let change = tracker.update(at(20.0), 5.0);
    assert_eq!(
        change,
        CellChange {
            join: vec![east],
            leave: vec![]
        }
    );
}

#[test]
fn poor_or_bogus_fixes_are_ignored() {
    let mut tracker = CellTracker::default();
    let p = pt(48.8566, 2.3522);
    for accuracy in [1000.5, 5000.0, f64::NAN, f64::INFINITY, -1.0] {
        assert!(tracker.update(p, accuracy).is_empty(), "{accuracy}");
    }
    let bogus = [
        GeoPoint {
            lat: f64::NAN,
            lon: 0.0,
        },
        GeoPoint {
            lat: 91.0,
            lon: 0.0,
        },
        GeoPoint {
            lat: 0.0,
            lon: 200.0,
        },
    ];
    for fix in bogus {
        assert!(tracker.update(fix, 5.0).is_empty(), "{fix:?}");
    }
    assert_eq!(tracker.cells().count(), 0);

    assert_eq!(
        tracker.update(p, 1000.0).join,
        enrollment_cells(p, DEFAULT_RADIUS_M)
    );
    let before: Vec<String> = tracker.cells().map(str::to_owned).collect();
    // A wild fix 5 km away with 2 km accuracy moves nothing.
    assert!(
        tracker
            .update(destination(p, 0.0, 5000.0), 2000.0)
            .is_empty()
    );
    assert_eq!(
        tracker.cells().map(str::to_owned).collect::<Vec<_>>(),
        before
    );
}

#[test]
fn clear_returns_every_cell() {
    let cell = cell_of(pt(48.8566, 2.3522));
    let (_, n, _, e) = bbox(&cell);
    let corner = pt(n, e);
    let mut tracker = CellTracker::default();
    let mut all = BTreeSet::new();
    // Walk across the corner: hysteresis keeps up to four cells.
    for bearing in [225.0, 45.0] {
        let fix = destination(corner, bearing, 5.0);
        all.extend(tracker.update(fix, 5.0).join);
    }
    assert_eq!(all.len(), 4, "{all:?}");
    let cleared = tracker.clear();
    assert_eq!(cleared, all.into_iter().collect::<Vec<_>>());
    assert_eq!(tracker.cells().count(), 0);
    assert!(tracker.clear().is_empty());
    // Starting again joins afresh.
    let fix = destination(corner, 225.0, 5.0);
    assert_eq!(
        tracker.update(fix, 5.0).join,
        enrollment_cells(fix, DEFAULT_RADIUS_M)
    );
}
