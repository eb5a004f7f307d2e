//! [`Npz::read`]: any member into an array of its own, as numpy's `np.load` gives it:
//! members `np.savez` leaves unaligned and the deflated members of `np.savez_compressed`
//! included (inflated with `flate2`), where [`Npz::member`] maps only stored, aligned ones.

use std::io::Read;

use ndarray::ArrayD;
use zip::CompressionMethod;

use super::{Npz, method_name, zerr};
use crate::element::Element;
use crate::error::{Error, NpzProblem};
use crate::map::file;
use crate::npy::NpyHeader;

impl Npz {
    /// Reads member `name` (with or without `.npy`) into an array of its own, its header
    /// checked against `T`: stored members, aligned or not, and deflated ones (what
    /// `np.savez_compressed` writes), as numpy's `np.load` reads them. Prefer
    /// [`member`](Self::member) for a stored, aligned member: it maps it, copying nothing.
    ///
    /// # Errors
    /// As for [`member`](Self::member), but a member `np.savez` left unaligned or one
    /// `np.savez_compressed` deflated is read; [`NpzProblem::Compressed`] for other
    /// compression methods; [`Error::Npz`] naming the member when its bytes do not inflate to
    /// the size the archive gives, or its `.npy` data is shorter than its header says.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.npz");
    /// # let mut w = ndarray_mmap::NpzWriter::create(&path)?;
    /// # w.add("a", &ndarray::array![[1.5f64, 2.0], [3.0, 4.0]])?;
    /// # w.finish()?;
    /// let z = ndarray_mmap::open_npz(&path)?;
    /// let a = z.read::<f64>("a")?;
    /// assert_eq!(a, ndarray::array![[1.5, 2.0], [3.0, 4.0]].into_dyn());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read<T: Element>(&self, name: &str) -> Result<ArrayD<T>, Error> {
        let m = self.readable(name)?;
        let member = m.short().to_owned();
        let bad = |detail: String| {
            zerr(
                &self.path,
                NpzProblem::Unsupported {
                    member: member.clone(),
                    feature: detail,
                },
            )
        };
        if !self.file.matches(&self.path) {
            return Err(zerr(&self.path, NpzProblem::Replaced));
        }
        // The stored bytes (checked to lie inside the archive when it was opened).
        let f = file::open_regular(
            &self.path,
            std::fs::OpenOptions::new().read(true),
            "open for reading",
        )?;
        let stored_len = usize::try_from(m.size).map_err(|_| bad("a member too large".into()))?;
        let mut buf = Vec::new();
        let stored = file::read_buffer(&mut buf, stored_len, m.data_start);
        file::read_exact_at(&f, stored, m.data_start)
            .map_err(|e| Error::io(&self.path, "read a member of", e))?;
        let inflated;
        let raw: &[u8] = match m.method {
            CompressionMethod::Stored => stored,
            method if method == CompressionMethod::DEFLATE => {
                // At most the size the archive gives, and exactly it.
                let mut raw = Vec::new();
                flate2::read::DeflateDecoder::new(&*stored)
                    .take(m.raw_size.saturating_add(1))
                    .read_to_end(&mut raw)
                    .map_err(|e| bad(format!("deflated data that does not inflate ({e})")))?;
                if raw.len() as u64 != m.raw_size {
                    return Err(bad(format!(
                        "deflated data that inflates to {} bytes, not the {} the archive gives",
                        raw.len(),
                        m.raw_size
                    )));
                }
                inflated = raw;
                &inflated
            }
            other => {
                return Err(zerr(
                    &self.path,
                    NpzProblem::Compressed {
                        member,
                        method: method_name(other),
                    },
                ));
            }
        };
        // As numpy's zipfile does: the bytes must match the directory's CRC-32.
        let mut crc = flate2::Crc::new();
        crc.update(raw);
        if crc.sum() != m.crc32 {
            return Err(bad(format!(
                "bytes whose CRC-32 ({:08x}) is not the archive's ({:08x}): a damaged archive",
                crc.sum(),
                m.crc32
            )));
        }
        // The member is a .npy file: its header, then its data (unaligned here).
        let name_it = |e: Error| {
            let message = e.to_string();
            bad(format!("a .npy member that cannot be read: {message}"))
        };
        let h = NpyHeader::parse(raw).map_err(name_it)?;
        h.check_element::<T>().map_err(name_it)?;
        let count = h
            .shape()
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(std::mem::size_of::<T>()));
        let data = raw.get(h.data_offset()..).unwrap_or_default();
        let Some(need) = count.filter(|&n| n <= data.len()) else {
            return Err(bad(format!(
                "a .npy member whose data ({} bytes) is shorter than its shape {:?} needs",
                data.len(),
                h.shape()
            )));
        };
        let elems: Vec<T> = bytemuck::pod_collect_to_vec(&data[..need]);
        let dim = ndarray::IxDyn(h.shape());
        let shape: ndarray::StrideShape<ndarray::IxDyn> = match h.order() {
            crate::Order::F => ndarray::ShapeBuilder::f(dim).into(),
            _ => dim.into(),
        };
        ArrayD::from_shape_vec(shape, elems).map_err(|e| bad(e.to_string()))
    }
}
