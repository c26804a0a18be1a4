//! A small map drawn on the server, for a LAN without internet: an equirectangular projection
//! fitted to a few points, its graticule, and where to lay the world outline
//! (`static/vendor/world-atlas/land-110m.svg`, in degrees). Pure: degrees in, pixels out.
//!
//! The projection is equidistant cylindrical with its standard parallel at the middle of the
//! points, so a map of Europe is not stretched sideways. Points on both sides of the
//! antimeridian (Tokyo and Los Angeles) are drawn across the Pacific, not across the world.

use super::round1;

/// Degrees of latitude and longitude: `(lat, lon)`, as `geo::haversine_km` takes them.
pub type LatLon = (f64, f64);

/// The least a map shows, in degrees, so one point or two in one city still have a
/// neighbourhood around them.
const MIN_SPAN_DEG: f64 = 6.0;
/// The narrowest a degree of longitude gets relative to a degree of latitude: near the poles
/// the true ratio tends to zero and would stretch the map without bound.
const MIN_PARALLEL_SCALE: f64 = 0.2;
/// Graticule steps to choose from, in degrees.
const STEPS: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 45.0, 90.0];
/// The least room between two graticule lines, in pixels.
const MIN_GRID_PX: f64 = 56.0;
/// One copy of the world in the outline file spans these longitudes; the rings that cross
/// the antimeridian are in it a turn over as well (see `static/vendor/VERSIONS.md`), so each
/// copy laid a turn apart is seamless.
const OUTLINE_WEST: f64 = -180.0;
const OUTLINE_EAST: f64 = 180.0;

/// A projection fitted to a set of points in a `width` × `height` pixel box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Pixels.
    pub width: f64,
    pub height: f64,
    /// Pixels per degree of latitude.
    scale: f64,
    /// Pixels per degree of longitude, relative to `scale`: the cosine of the standard parallel.
    parallel: f64,
    /// The centre, in degrees (the longitude unwrapped, see `cut`).
    lat0: f64,
    lon0: f64,
    /// Longitudes west of this are moved a turn east, so the points sit in one window.
    cut: Option<f64>,
}

/// One line of the graticule, in pixels, with its label ("30°E", "45°N").
#[derive(Debug, Clone, PartialEq)]
pub struct GridLine {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    pub label: String,
    /// Where the label goes (the bottom of a meridian, the left end of a parallel).
    pub label_x: f64,
    pub label_y: f64,
    pub meridian: bool,
}

impl Frame {
    /// The projection that shows every one of `points` inside the box, `margin` pixels from
    /// its edges, as large as it fits. No point: the whole world.
    pub fn fit(points: &[LatLon], width: f64, height: f64, margin: f64) -> Self {
        let width = width.max(1.0);
        let height = height.max(1.0);
        if points.is_empty() {
            return Self {
                width,
                height,
                scale: (width / 360.0).min(height / 180.0),
                parallel: 1.0,
                lat0: 0.0,
                lon0: 0.0,
                cut: None,
            };
        }
        let lons: Vec<f64> = points.iter().map(|p| normalize_lon(p.1)).collect();
        let cut = window_cut(&lons);
        let unwrap = |lon: f64| match cut {
            Some(c) if lon < c => lon + 360.0,
            _ => lon,
        };
        let (mut west, mut east) = (f64::INFINITY, f64::NEG_INFINITY);
        for lon in lons.iter().copied().map(unwrap) {
            west = west.min(lon);
            east = east.max(lon);
        }
        let (mut south, mut north) = (f64::INFINITY, f64::NEG_INFINITY);
        for (lat, _) in points {
            let lat = lat.clamp(-90.0, 90.0);
            south = south.min(lat);
            north = north.max(lat);
        }
        let mid_lat = f64::midpoint(south, north);
        let mid_lon = f64::midpoint(west, east);
        let parallel = mid_lat.to_radians().cos().max(MIN_PARALLEL_SCALE);
        // Spans in degrees of latitude, so both directions measure alike.
        let span_x = ((east - west) * parallel).max(MIN_SPAN_DEG);
        let span_y = (north - south).max(MIN_SPAN_DEG);
        let room_x = (width - 2.0 * margin).max(width * 0.2);
        let room_y = (height - 2.0 * margin).max(height * 0.2);
        // Never zoom out past the whole world.
        let world = (width / (360.0 * parallel)).min(height / 180.0);
        let scale = (room_x / span_x).min(room_y / span_y).max(world);
        // Keep the poles at or beyond the edges when the view is smaller than the globe.
        let half = height / 2.0 / scale;
        let mid_lat = if half < 90.0 { mid_lat.clamp(-90.0 + half, 90.0 - half) } else { 0.0 };
        Self { width, height, scale, parallel, lat0: mid_lat, lon0: mid_lon, cut }
    }

    fn unwrap(&self, lon: f64) -> f64 {
        let lon = normalize_lon(lon);
        match self.cut {
            Some(c) if lon < c => lon + 360.0,
            _ => lon,
        }
    }

    fn px_per_lon(&self) -> f64 {
        self.scale * self.parallel
    }

    /// Where `(lat, lon)` lands, in pixels from the top left corner.
    pub fn project(&self, (lat, lon): LatLon) -> (f64, f64) {
        let x = self.width / 2.0 + (self.unwrap(lon) - self.lon0) * self.px_per_lon();
        let y = self.height / 2.0 - (lat - self.lat0) * self.scale;
        (x, y)
    }

    /// The longitudes at the left and right edges (unwrapped: west may be below -180).
    fn lon_range(&self) -> (f64, f64) {
        let half = self.width / 2.0 / self.px_per_lon();
        (self.lon0 - half, self.lon0 + half)
    }

    /// The latitudes at the bottom and top edges, within the globe.
    fn lat_range(&self) -> (f64, f64) {
        let half = self.height / 2.0 / self.scale;
        ((self.lat0 - half).max(-90.0), (self.lat0 + half).min(90.0))
    }

    /// Meridians and parallels every few degrees, as many as fit with room between them.
    pub fn graticule(&self) -> Vec<GridLine> {
        let step_for = |px_per_deg: f64| {
            STEPS.into_iter().find(|s| s * px_per_deg >= MIN_GRID_PX).unwrap_or(90.0)
        };
        let (south, north) = self.lat_range();
        let (west, east) = self.lon_range();
        let top = self.project((north, self.lon0)).1;
        let bottom = self.project((south, self.lon0)).1;
        let mut lines = Vec::new();
        let lon_step = step_for(self.px_per_lon());
        let mut lon = (west / lon_step).ceil() * lon_step;
        while lon <= east {
            let x = self.width / 2.0 + (lon - self.lon0) * self.px_per_lon();
            lines.push(GridLine {
                x1: round1(x),
                y1: round1(top),
                x2: round1(x),
                y2: round1(bottom),
                label: lon_label(lon),
                label_x: round1(x + 3.0),
                label_y: round1(bottom - 4.0),
                meridian: true,
            });
            lon += lon_step;
        }
        let lat_step = step_for(self.scale);
        let mut lat = (south / lat_step).ceil() * lat_step;
        while lat <= north {
            let y = self.height / 2.0 - (lat - self.lat0) * self.scale;
            lines.push(GridLine {
                x1: 0.0,
                y1: round1(y),
                x2: round1(self.width),
                y2: round1(y),
                label: lat_label(lat),
                label_x: 3.0,
                label_y: round1(y - 3.0),
                meridian: false,
            });
            lat += lat_step;
        }
        lines
    }

    /// SVG `transform`s that lay the outline file (x = longitude, y = minus latitude, in
    /// degrees) under this projection: one per copy a turn apart that shows in the box.
    pub fn outline_transforms(&self) -> Vec<String> {
        let (west, east) = self.lon_range();
        let a = self.px_per_lon();
        let d = self.scale;
        let f = self.height / 2.0 + self.lat0 * d;
        (-1..=2)
            .map(|turns| f64::from(turns) * 360.0)
            .filter(|shift| OUTLINE_WEST + shift < east && OUTLINE_EAST + shift > west)
            .map(|shift| {
                let e = self.width / 2.0 + (shift - self.lon0) * a;
                format!("matrix({a:.4} 0 0 {d:.4} {e:.2} {f:.2})")
            })
            .collect()
    }
}

/// A longitude in `[-180, 180)`.
fn normalize_lon(lon: f64) -> f64 {
    (lon + 180.0).rem_euclid(360.0) - 180.0
}

/// Where to cut the circle of longitudes so the points sit in the narrowest window: at the
/// widest gap between neighbours. `None` when that gap already spans the antimeridian.
fn window_cut(lons: &[f64]) -> Option<f64> {
    let mut sorted = lons.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    let mut widest = (first + 360.0 - last, None);
    for pair in sorted.windows(2) {
        let gap = pair[1] - pair[0];
        if gap > widest.0 {
            widest = (gap, Some(pair[1]));
        }
    }
    widest.1
}

/// Whole degrees print without a fraction ("30", not "30.0").
fn degrees(v: f64) -> String {
    format!("{}", v.abs())
}

/// "30°E", "120°W", "0°", "180°" for a longitude, unwrapped or not.
fn lon_label(lon: f64) -> String {
    let lon = normalize_lon(lon);
    if lon.abs() < 1e-9 || (lon + 180.0).abs() < 1e-9 {
        format!("{}°", degrees(lon))
    } else if lon > 0.0 {
        format!("{}°E", degrees(lon))
    } else {
        format!("{}°W", degrees(lon))
    }
}

/// "45°N", "10°S", "0°".
fn lat_label(lat: f64) -> String {
    if lat.abs() < 1e-9 {
        "0°".to_owned()
    } else if lat > 0.0 {
        format!("{}°N", degrees(lat))
    } else {
        format!("{}°S", degrees(lat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONDON: LatLon = (51.5142, -0.0931);
    const MILTON: LatLon = (47.2513, -122.3149);
    const TOKYO: LatLon = (35.68, 139.69);
    const LOS_ANGELES: LatLon = (34.05, -118.24);

    fn inside(frame: &Frame, p: LatLon, margin: f64) -> bool {
        let (x, y) = frame.project(p);
        x >= margin - 0.01
            && x <= frame.width - margin + 0.01
            && y >= margin - 0.01
            && y <= frame.height - margin + 0.01
    }

    #[test]
    fn the_points_fill_the_box_within_the_margin_north_up_and_east_right() {
        let frame = Frame::fit(&[LONDON, MILTON], 640.0, 360.0, 40.0);
        for p in [LONDON, MILTON] {
            assert!(inside(&frame, p, 40.0), "{p:?} at {:?}", frame.project(p));
        }
        let (lx, ly) = frame.project(LONDON);
        let (mx, my) = frame.project(MILTON);
        assert!(lx > mx, "London is east of Milton");
        assert!(ly < my, "London is north of Milton");
        // As large as fits: the wider span touches the margins on both sides.
        assert!((lx - (640.0 - 40.0)).abs() < 0.5 && (mx - 40.0).abs() < 0.5, "{lx} {mx}");
        // The middle of the points is the middle of the box.
        assert!((f64::midpoint(ly, my) - 180.0).abs() < 0.5);
    }

    #[test]
    fn a_degree_of_longitude_shrinks_with_the_cosine_of_the_middle_latitude() {
        let frame = Frame::fit(&[(60.0, 10.0), (60.0, 20.0)], 600.0, 600.0, 0.0);
        let (x1, _) = frame.project((60.0, 10.0));
        let (x2, _) = frame.project((60.0, 20.0));
        let (_, y1) = frame.project((60.0, 10.0));
        let (_, y2) = frame.project((70.0, 10.0));
        let px_per_lon = (x2 - x1) / 10.0;
        let px_per_lat = (y1 - y2) / 10.0;
        assert!((px_per_lon / px_per_lat - 0.5).abs() < 1e-9, "cos 60° = 0.5");
    }

    #[test]
    fn points_across_the_antimeridian_are_drawn_across_the_pacific() {
        let frame = Frame::fit(&[TOKYO, LOS_ANGELES], 640.0, 360.0, 40.0);
        let (tx, _) = frame.project(TOKYO);
        let (lx, _) = frame.project(LOS_ANGELES);
        assert!(tx < lx, "Tokyo on the left, Los Angeles to its east: {tx} {lx}");
        assert!(inside(&frame, TOKYO, 40.0) && inside(&frame, LOS_ANGELES, 40.0));
        // 102° of ocean apart, not 258° of land.
        assert_eq!(window_cut(&[139.69, -118.24]), Some(139.69));
        assert_eq!(window_cut(&[-0.09, -122.3]), None);
        // The meridian labels carry on past 180° into the west.
        let labels: Vec<String> =
            frame.graticule().into_iter().filter(|l| l.meridian).map(|l| l.label).collect();
        assert!(labels.contains(&"180°".to_owned()), "{labels:?}");
        assert!(labels.iter().any(|l| l.ends_with('W')) && labels.iter().any(|l| l.ends_with('E')));
        // The outline is laid a turn east as well, for the Americas.
        assert!(frame.outline_transforms().len() >= 2, "{:?}", frame.outline_transforms());
    }

    #[test]
    fn one_point_or_two_in_one_city_get_a_neighbourhood_around_them() {
        let one = Frame::fit(&[LONDON], 640.0, 360.0, 40.0);
        let (x, y) = one.project(LONDON);
        assert!((x - 320.0).abs() < 1e-6 && (y - 180.0).abs() < 1e-6, "centred");
        let (_, top) = one.project((LONDON.0 + MIN_SPAN_DEG / 2.0, LONDON.1));
        assert!(top >= 40.0 - 1e-6, "at least {MIN_SPAN_DEG}° high: {top}");
        let city = Frame::fit(&[LONDON, (51.52, -0.10)], 640.0, 360.0, 40.0);
        assert!((city.scale - one.scale).abs() < 1e-9, "not zoomed into the street");
    }

    #[test]
    fn the_graticule_has_room_between_its_lines_and_stays_on_the_globe() {
        for points in [vec![LONDON, MILTON], vec![LONDON], vec![TOKYO, LOS_ANGELES], vec![]] {
            let frame = Frame::fit(&points, 640.0, 360.0, 40.0);
            let grid = frame.graticule();
            let xs: Vec<f64> = grid.iter().filter(|l| l.meridian).map(|l| l.x1).collect();
            let ys: Vec<f64> = grid.iter().filter(|l| !l.meridian).map(|l| l.y1).collect();
            assert!(xs.len() >= 2 && ys.len() >= 2, "{points:?}: {grid:?}");
            for pair in xs.windows(2) {
                assert!(pair[1] - pair[0] >= MIN_GRID_PX - 0.2, "{points:?}: {xs:?}");
            }
            for line in grid.iter().filter(|l| l.meridian) {
                assert!(line.y1 >= -0.1 && line.y2 <= 360.1, "{line:?}");
            }
        }
        let world = Frame::fit(&[], 720.0, 360.0, 0.0);
        let labels: Vec<String> = world.graticule().into_iter().map(|l| l.label).collect();
        assert!(labels.contains(&"90°N".to_owned()) && labels.contains(&"0°".to_owned()));
        assert_eq!(lon_label(-75.0), "75°W");
        assert_eq!(lon_label(400.0), "40°E");
        assert_eq!(lat_label(-12.5), "12.5°S");
    }

    #[test]
    fn the_outline_transform_puts_a_degree_where_the_projection_does() {
        let frame = Frame::fit(&[LONDON, MILTON], 640.0, 360.0, 40.0);
        let transforms = frame.outline_transforms();
        assert_eq!(transforms.len(), 1, "{transforms:?}");
        let numbers: Vec<f64> = transforms[0]
            .trim_start_matches("matrix(")
            .trim_end_matches(')')
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        let [scale_x, _, _, scale_y, move_x, move_y] = numbers[..] else { panic!("{numbers:?}") };
        // The outline file has London at (lon, -lat).
        let outline = (scale_x * LONDON.1 + move_x, scale_y * -LONDON.0 + move_y);
        let projected = frame.project(LONDON);
        assert!(
            (outline.0 - projected.0).abs() < 0.05 && (outline.1 - projected.1).abs() < 0.05,
            "{outline:?} vs {projected:?}"
        );
    }
}
