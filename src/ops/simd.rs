//! The elementwise loops over contiguous pieces, compiled twice: for the baseline CPU and,
//! on x86-64, for AVX2, chosen at run time (as numpy's loops are). The loops are memory
//! bound, but 8 lanes instead of 4 still took 10% off an add in the page cache.
//!
//! The only `unsafe` outside `map/`: calling a function compiled for AVX2 requires the CPU
//! to have it, which `is_x86_feature_detected!` checks just before.

/// Defines `pub(super) fn $name` that runs `$body` compiled for AVX2 when the CPU has it,
/// else for the baseline.
macro_rules! wide {
    ($(#[$doc:meta])* fn $name:ident<$($g:ident),*>($($arg:ident: $ty:ty),*) where [$($w:tt)*] $body:block) => {
        $(#[$doc])*
        pub(super) fn $name<$($g),*>($($arg: $ty),*) where $($w)* {
            #[inline(always)]
            fn plain<$($g),*>($($arg: $ty),*) where $($w)* $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2<$($g),*>($($arg: $ty),*) where $($w)* { plain($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: `avx2` is compiled for AVX2, which the CPU was just found to have;
                // that is its only requirement (its body is the safe `plain`).
                return unsafe { avx2($($arg),*) };
            }
            plain($($arg),*)
        }
    };
}

wide! {
    /// `c[i] = f(a[i], b[i])` over slices of one length.
    fn zip3<A, B, C, F>(c: &mut [C], a: &[A], b: &[B], f: &F)
    where [A: Copy, B: Copy, F: Fn(A, B) -> C]
    {
        for ((c, &a), &b) in c.iter_mut().zip(a).zip(b) {
            *c = f(a, b);
        }
    }
}

wide! {
    /// `c[i] = f(a[i])` over slices of one length.
    fn zip2<A, C, F>(c: &mut [C], a: &[A], f: &F)
    where [A: Copy, F: Fn(A) -> C]
    {
        for (c, &a) in c.iter_mut().zip(a) {
            *c = f(a);
        }
    }
}

wide! {
    /// `a[i] = f(a[i], b[i])` over slices of one length.
    fn update2<A, B, F>(a: &mut [A], b: &[B], f: &F)
    where [A: Copy, B: Copy, F: Fn(A, B) -> A]
    {
        for (a, &b) in a.iter_mut().zip(b) {
            *a = f(*a, b);
        }
    }
}

wide! {
    /// `a[i] = f(a[i])`.
    fn update1<A, F>(a: &mut [A], f: &F)
    where [A: Copy, F: Fn(A) -> A]
    {
        for a in a.iter_mut() {
            *a = f(*a);
        }
    }
}

/// The pieces as slices in one memory order, when every one is contiguous with the same
/// strides (then element `i` of each slice is the same index of the array).
pub(super) fn same_contiguous(strides: &[&[isize]]) -> bool {
    strides.windows(2).all(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_matches_the_plain_loop() {
        let a: Vec<f32> = (0..1003).map(|i| i as f32 * 0.5).collect();
        let b: Vec<i32> = (0..1003).collect();
        let mut c = vec![0f64; 1003];
        zip3(&mut c, &a, &b, &|x: f32, y: i32| {
            f64::from(x) * f64::from(y)
        });
        assert!(
            c.iter()
                .enumerate()
                .all(|(i, &v)| v == (i * i) as f64 * 0.5)
        );
        let mut d = vec![0u8; 1003];
        zip2(&mut d, &b, &|y: i32| (y % 7) as u8);
        assert!(d.iter().enumerate().all(|(i, &v)| v == (i % 7) as u8));
        let mut e = a.clone();
        update2(&mut e, &b, &|x: f32, y: i32| x - y as f32);
        assert!(e.iter().enumerate().all(|(i, &v)| v == -(i as f32) * 0.5));
        update1(&mut e, &|x: f32| -x);
        assert_eq!(e, a);
        assert!(same_contiguous(&[&[4, 1], &[4, 1]]));
        assert!(!same_contiguous(&[&[4, 1], &[1, 3]]));
    }
}
