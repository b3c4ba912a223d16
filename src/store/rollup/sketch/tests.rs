use super::*;

fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64) as usize]
}

fn assert_within(sketch: &Sketch, sorted: &[f64], tolerance: f64) {
    for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99] {
        let want = exact(sorted, q);
        let got = sketch.quantile(q).expect("not empty");
        assert!(
            (got - want).abs() <= tolerance * want.abs(),
            "q{q}: got {got:e}, exact {want:e}"
        );
    }
}

/// Log-uniform over 10^12 on both signs, many values: every bin within the span is
/// filled, nothing collapses, and every percentile is within 1%.
#[test]
fn values_spanning_ten_to_the_twelve_stay_within_one_percent() {
    let mut values: Vec<f64> = (0..200_000)
        .map(|i| {
            let exponent = -6.0 + 12.0 * (i as f64 / 199_999.0);
            let v = 10f64.powf(exponent);
            if i % 3 == 0 { -v } else { v }
        })
        .collect();
    let mut sketch = Sketch::default();
    for &v in &values {
        sketch.add(v);
    }
    assert!(sketch.positive.0.len() <= MAX_BINS && sketch.negative.0.len() <= MAX_BINS);
    assert!(sketch.positive.0.len() > 1_700, "the span fills its bins");
    values.sort_by(f64::total_cmp);
    assert_within(&sketch, &values, 0.01);
    assert_eq!(sketch.count(), values.len() as u64);
}

/// The sketch bomb: the smallest and largest normal magnitudes cost two bins, not the
/// millions between them.
#[test]
fn extreme_values_cost_a_bin_each() {
    let mut sketch = Sketch::default();
    for v in [
        1e-307,
        1e308,
        -1e-307,
        -1e308,
        f64::MAX,
        f64::MIN_POSITIVE * 2.0,
    ] {
        sketch.add(v);
    }
    assert!(
        sketch.heap_bytes() <= 2 * 4 * 8,
        "{} bytes",
        sketch.heap_bytes()
    );
    assert_eq!(sketch.count(), 6);
    let top = sketch.quantile(1.0).unwrap();
    assert!(top.is_infinite() || (top - f64::MAX).abs() <= 0.01 * f64::MAX);
    let low = sketch.quantile(0.0).unwrap();
    assert!(low.is_infinite() || (low + 1e308).abs() <= 0.01 * 1e308);
}

/// Whatever it is fed, a sketch never holds more than `MAX_BINS` bins a sign, and what
/// collapses is the lowest magnitudes, answered too large but at most at the floor.
#[test]
fn size_is_bounded_and_the_lowest_collapse() {
    let mut sketch = Sketch::default();
    let mut values = Vec::new();
    // One value per bin over 600 decades: far more bins than kept.
    let mut v = 1e-300;
    while v < 1e300 {
        sketch.add(v);
        sketch.add(-v);
        values.push(v);
        v *= 1.02;
    }
    let bound = 2 * allocation((MAX_BINS + 1) * size_of::<u64>());
    assert!(
        sketch.heap_bytes() <= bound,
        "{} > {bound}",
        sketch.heap_bytes()
    );
    assert_eq!(sketch.positive.0.len(), MAX_BINS);
    assert_eq!(sketch.count(), 2 * values.len() as u64);
    // The top 10^12 is exact within 1%.
    let largest = *values.last().unwrap();
    let high = values.iter().filter(|&&x| x >= largest / 1e12).count() as f64;
    let n = 2.0 * values.len() as f64;
    // Halfway into the top 10^12 of the positive values.
    let q = (n - high / 2.0) / (n - 1.0);
    let sorted: Vec<f64> = {
        let mut all: Vec<f64> = values.iter().flat_map(|&x| [x, -x]).collect();
        all.sort_by(f64::total_cmp);
        all
    };
    let want = exact(&sorted, q);
    let got = sketch.quantile(q).unwrap();
    assert!(
        (got - want).abs() <= 0.01 * want,
        "q{q}: {got:e} vs {want:e}"
    );
    // The median is a folded value: too large, but not above the 10^12 floor.
    let median = sketch.quantile(0.75).unwrap();
    assert!(median >= exact(&sorted, 0.75) && median <= largest / 1e12 * 1.01);
}

#[test]
fn merging_equals_adding_everything_to_one() {
    let values: Vec<f64> = (1..5_000).map(|i| (i as f64).powf(1.7) - 900.0).collect();
    let (mut a, mut b, mut whole) = (Sketch::default(), Sketch::default(), Sketch::default());
    for (i, &v) in values.iter().enumerate() {
        if i % 2 == 0 {
            a.add(v)
        } else {
            b.add(v)
        }
        whole.add(v);
    }
    a.merge(&b);
    for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
        assert_eq!(a.quantile(q), whole.quantile(q), "q{q}");
    }
    // Every bin of `a` is in `whole` now: merged in place, counts add up.
    let mut twice = whole.clone();
    let bins = twice.positive.0.as_ptr();
    twice.merge(&a);
    assert_eq!(twice.positive.0.as_ptr(), bins, "in place");
    assert_eq!(twice.count(), 2 * whole.count());
    assert_eq!(twice.quantile(0.5), whole.quantile(0.5));
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    assert_within(&a, &sorted, 0.01);
}

#[test]
fn the_constants_are_the_formulas() {
    let gamma_ln = (2.0 * ALPHA / (1.0 - ALPHA)).ln_1p();
    assert!((GAMMA_LN - gamma_ln).abs() < 1e-17, "{gamma_ln}");
    let gamma = gamma_ln.exp();
    assert!((LN_MIDPOINT - (2.0 / (1.0 + gamma)).ln()).abs() < 1e-17);
    // Every bin answers within α of every value in it.
    for v in [1e-300, 0.5, 1.0, 3.7, 1e9, 1e300] {
        let answered = value_of(key_of(v));
        assert!(
            (answered - v).abs() <= ALPHA * v * (1.0 + 1e-12),
            "{v}: {answered}"
        );
    }
}

#[test]
fn zeros_subnormals_and_empty() {
    let mut sketch = Sketch::default();
    assert_eq!(sketch.quantile(0.5), None);
    for v in [0.0, -0.0, 1e-310, -1e-310, 5.0] {
        sketch.add(v);
    }
    assert_eq!(sketch.quantile(0.5), Some(0.0));
    assert!((sketch.quantile(1.0).unwrap() - 5.0).abs() <= 0.05);
}

#[test]
fn encoding_round_trips_and_refuses_garbage() {
    let mut sketch = Sketch::default();
    for v in [-1e300, -2.5, 0.0, 0.0, 1e-300, 3.0, 3.0, 7e12] {
        sketch.add(v);
    }
    let mut bytes = Vec::new();
    sketch.encode(&mut bytes);
    bytes.extend_from_slice(b"rest");
    let (back, rest) = Sketch::decode(&bytes).expect("decodes");
    assert_eq!(rest, b"rest");
    assert_eq!(back.count(), sketch.count());
    for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
        assert_eq!(back.quantile(q), sketch.quantile(q), "q{q}");
    }
    let (empty, _) = Sketch::decode(&{
        let mut b = Vec::new();
        Sketch::default().encode(&mut b);
        b
    })
    .expect("the empty sketch decodes");
    assert_eq!(empty.quantile(0.5), None);

    bytes.truncate(bytes.len() - 4);
    for cut in 0..bytes.len() {
        assert!(Sketch::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // The first positive bin repeated: keys must rise.
    let mut unsorted = bytes.clone();
    let first_bin = 8 + 4;
    let bin: [u8; 8] = unsorted[first_bin..first_bin + 8].try_into().unwrap();
    unsorted[first_bin + 8..first_bin + 16].copy_from_slice(&bin);
    assert!(Sketch::decode(&unsorted).is_err());
    let mut too_many = bytes.clone();
    too_many[8..12].copy_from_slice(&(MAX_BINS as u32 + 1).to_le_bytes());
    assert!(Sketch::decode(&too_many).is_err());
}
