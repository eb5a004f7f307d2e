//! `ndarray_mmap._native`: the crate's maps as numpy arrays (through `__array_interface__`,
//! no copy), and `evaluate`, which parses a numexpr expression, types it as numpy does and
//! runs it over the crate's streaming engine with the GIL released. The Python package
//! (`python/ndarray_mmap/`) wraps it.

use std::sync::Mutex;

use ndarray::{ArrayViewD, ArrayViewMutD, IxDyn, ShapeBuilder};
use ndarray_mmap::ops::{AnyElement, ZipDyn};
use ndarray_mmap::zarr::{self, Compressor, CreateOptions, ZarrArray, ZarrArrayMut};
use ndarray_mmap::{Error, MapOptions, MmapArray, MmapArrayMut, NpyHeader, Order};
use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyDict, PyTuple};

mod cache;
mod expr;
mod run;
mod vm;

use expr::{Dt, Reduce};
use run::{Acc, Stop};
use vm::dispatch;

/// The crate's error as the Python exception a numpy user expects.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Io { .. }
        | Error::NotAFile { .. }
        | Error::Locked { .. }
        | Error::Reserve { .. } => PyOSError::new_err(msg),
        Error::Cancelled { .. } => PyKeyboardInterrupt::new_err(msg),
        Error::Npy { .. } => PyValueError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// A typing error as numpy raises it: `OverflowError` for a Python integer out of the
/// array type's range, `ValueError` for integers to negative powers, else `TypeError`.
fn type_err(msg: String) -> PyErr {
    if msg.starts_with("Python integer") {
        pyo3::exceptions::PyOverflowError::new_err(msg)
    } else if msg.starts_with("Integers to negative") {
        PyValueError::new_err(msg)
    } else {
        PyTypeError::new_err(msg)
    }
}

fn dt(name: &str) -> PyResult<Dt> {
    Dt::from_name(name).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "dtype {name:?} is not one evaluate computes in (bool, int8..int64, uint8..uint64, \
             float32, float64)"
        ))
    })
}

/// numpy's type string of `dt` in native byte order.
fn typestr(dt: Dt) -> String {
    let (kind, size) = match dt {
        Dt::Bool => ('b', 1),
        Dt::I8 => ('i', 1),
        Dt::I16 => ('i', 2),
        Dt::I32 => ('i', 4),
        Dt::I64 => ('i', 8),
        Dt::U8 => ('u', 1),
        Dt::U16 => ('u', 2),
        Dt::U32 => ('u', 4),
        Dt::U64 => ('u', 8),
        Dt::F32 => ('f', 4),
        Dt::F64 => ('f', 8),
    };
    let end = if size == 1 { '|' } else { NATIVE };
    format!("{end}{kind}{size}")
}

/// numpy's byte-order marks of this machine's order and of the other one.
const NATIVE: char = if cfg!(target_endian = "little") {
    '<'
} else {
    '>'
};
const FOREIGN: char = if cfg!(target_endian = "little") {
    '>'
} else {
    '<'
};

/// A `.npy` descriptor's type code, without its byte-order mark when that is this
/// machine's (or none applies): `"<f4"` -> `"f4"` on a little-endian machine.
fn type_code(descr: &str) -> &str {
    descr.strip_prefix(['|', NATIVE, '=']).unwrap_or(descr)
}

/// The storage type of `dt` (numpy's bool is stored as `u8`).
macro_rules! storage {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            Dt::Bool | Dt::U8 => {
                type $T = u8;
                $body
            }
            Dt::I8 => {
                type $T = i8;
                $body
            }
            Dt::I16 => {
                type $T = i16;
                $body
            }
            Dt::I32 => {
                type $T = i32;
                $body
            }
            Dt::I64 => {
                type $T = i64;
                $body
            }
            Dt::U16 => {
                type $T = u16;
                $body
            }
            Dt::U32 => {
                type $T = u32;
                $body
            }
            Dt::U64 => {
                type $T = u64;
                $body
            }
            Dt::F32 => {
                type $T = f32;
                $body
            }
            Dt::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// [`storage!`] over every [`Ty`]: `$T` is the Rust element type of `$ty`.
macro_rules! storage_any {
    ($ty:expr, $T:ident => $body:expr) => {
        match $ty {
            Ty::Computed(d) => storage!(d, $T => $body),
            Ty::F16 => {
                type $T = half::f16;
                $body
            }
            Ty::C64 => {
                type $T = num_complex::Complex<f32>;
                $body
            }
            Ty::C128 => {
                type $T = num_complex::Complex<f64>;
                $body
            }
        }
    };
}

/// An operand an evaluation holds for its duration, of one element type.
trait Held: Send + Sync {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o>;
    /// Added as an output that is only written; `None` when it is read-only.
    fn output<'a, 'o>(&'a mut self, z: ZipDyn<'a, 'o>) -> Option<ZipDyn<'a, 'o>> {
        drop(z);
        None
    }
    /// Data pointer, shape and strides (in elements) of a mapped array.
    fn layout(&self) -> Option<(usize, Vec<usize>, Vec<isize>)> {
        None
    }
    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }
}

impl<T: AnyElement> Held for MmapArray<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(self)
    }
    fn layout(&self) -> Option<(usize, Vec<usize>, Vec<isize>)> {
        let v = self.view();
        Some((
            v.as_ptr() as usize,
            v.shape().to_vec(),
            v.strides().to_vec(),
        ))
    }
}

impl<T: AnyElement> Held for MmapArrayMut<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(self)
    }
    fn output<'a, 'o>(&'a mut self, z: ZipDyn<'a, 'o>) -> Option<ZipDyn<'a, 'o>> {
        Some(z.overwrite(self))
    }
    fn layout(&self) -> Option<(usize, Vec<usize>, Vec<isize>)> {
        let v = self.view();
        Some((
            v.as_ptr() as usize,
            v.shape().to_vec(),
            v.strides().to_vec(),
        ))
    }
    fn flush(&self) -> Result<(), Error> {
        MmapArrayMut::flush(self)
    }
}

impl<T: AnyElement> Held for ZarrArray<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(self)
    }
}

impl<T: AnyElement> Held for ZarrArrayMut<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(self)
    }
    fn output<'a, 'o>(&'a mut self, z: ZipDyn<'a, 'o>) -> Option<ZipDyn<'a, 'o>> {
        Some(z.overwrite(self))
    }
    fn flush(&self) -> Result<(), Error> {
        ZarrArrayMut::flush(self)
    }
}

impl<T: AnyElement> Held for zarr::Chunk<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(self)
    }
}

/// A Zarr array read chunk by chunk (any element type).
trait Chunked: Send + Sync {
    fn chunk(&self, index: &[usize]) -> Result<Box<dyn Held + '_>, Error>;
    /// The values in `region` (the array's coordinates, inside it), copied from the chunks
    /// it overlaps: those decoded last are kept in `recent` for the next regions.
    fn region(
        &self,
        region: &[std::ops::Range<usize>],
        recent: &mut Recent,
    ) -> Result<Box<dyn Held + '_>, Error>;
    fn chunk_shape(&self) -> Vec<usize>;
    fn shape(&self) -> Vec<usize>;
}

/// The chunks of an input read last (any element type): up to [`Recent::COUNT`] and
/// [`Recent::BYTES`] of them (at least one), so that output chunks side by side inside one
/// input chunk read it once. (A chunk kept may hold an open file and a map: the count
/// bounds those. The task's output chunks go row by row: where a row of them crosses more
/// input chunks than are kept, each is read again for the next row.)
#[derive(Default)]
struct Recent {
    /// Oldest first.
    chunks: std::collections::VecDeque<(Vec<usize>, Box<dyn std::any::Any + Send>)>,
}

impl Recent {
    const BYTES: usize = 64 << 20;
    const COUNT: usize = 16;

    /// Chunk `index` of `array`, read now unless it is kept.
    fn get<T: AnyElement>(
        &mut self,
        array: &ZarrArray<T>,
        index: &[usize],
    ) -> Result<&zarr::Chunk<T>, Error> {
        let kept = self.chunks.iter().position(|(i, _)| i == index);
        let k = match kept {
            Some(k) => k,
            None => {
                let each = array.chunk_shape().iter().product::<usize>() * size_of::<T>();
                let keep = (Self::BYTES / each.max(1)).clamp(1, Self::COUNT);
                // The oldest go before the new one is read.
                while self.chunks.len() >= keep {
                    self.chunks.pop_front();
                }
                let chunk = array.chunk(index)?;
                self.chunks.push_back((index.to_vec(), Box::new(chunk)));
                self.chunks.len() - 1
            }
        };
        Ok(self.chunks[k]
            .1
            .downcast_ref::<zarr::Chunk<T>>()
            .expect("one input's chunks are of one type"))
    }
}

impl<T: AnyElement> Held for ndarray::ArrayD<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(self)
    }
}

impl<T: AnyElement> Chunked for ZarrArray<T> {
    fn chunk(&self, index: &[usize]) -> Result<Box<dyn Held + '_>, Error> {
        Ok(Box::new(ZarrArray::chunk(self, index)?))
    }
    fn region(
        &self,
        region: &[std::ops::Range<usize>],
        recent: &mut Recent,
    ) -> Result<Box<dyn Held + '_>, Error> {
        use ndarray::{Dimension, Slice};
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        let mut out = ndarray::ArrayD::from_elem(IxDyn(&shape), T::zeroed());
        let cs = ZarrArray::chunk_shape(self);
        // The chunks the region overlaps, along each axis.
        let first: Vec<usize> = region.iter().zip(cs).map(|(r, &c)| r.start / c).collect();
        let ends: Vec<usize> = region
            .iter()
            .zip(cs)
            .map(|(r, &c)| r.end.div_ceil(c))
            .collect();
        let counts: Vec<usize> = first.iter().zip(&ends).map(|(f, e)| e - f).collect();
        for k in ndarray::indices(IxDyn(&counts)) {
            let index: Vec<usize> = first.iter().zip(k.slice()).map(|(f, k)| f + k).collect();
            let held = ZarrArray::region(self, &index)?;
            let chunk = recent.get(self, &index)?;
            let (mut to, mut from) = (out.view_mut(), chunk.view());
            for (axis, (r, h)) in region.iter().zip(&held).enumerate() {
                let (lo, hi) = (r.start.max(h.start), r.end.min(h.end));
                let axis = ndarray::Axis(axis);
                to.slice_axis_inplace(axis, Slice::from(lo - r.start..hi - r.start));
                from.slice_axis_inplace(axis, Slice::from(lo - h.start..hi - h.start));
            }
            to.assign(&from);
        }
        Ok(Box::new(out))
    }
    fn chunk_shape(&self) -> Vec<usize> {
        ZarrArray::chunk_shape(self).to_vec()
    }
    fn shape(&self) -> Vec<usize> {
        ZarrArray::shape(self).to_vec()
    }
}

/// Writes chunks `indices` of the Zarr array `out` (of type `T`): each computed into a
/// buffer from the inputs' values in its region (an input on the output's grid lends its
/// chunk; one on another grid is copied from the chunks the region overlaps), then written
/// whole ([`ZarrArrayMut::write_chunk`]: a compressed chunk replaced in one step).
fn chunk_task<T: AnyElement>(
    out: &std::path::Path,
    ins: &[Box<dyn Chunked>],
    prog: &mut vm::Program,
    vars: &[Dt],
    indices: &[Vec<usize>],
    tick: run::Tick<'_>,
) -> Result<(), Stop> {
    // SAFETY: the caller's contract: nothing truncates the chunk files meanwhile.
    let mut w = unsafe { zarr::open_mut::<T>(out) }.map_err(Stop::Engine)?;
    for a in ins {
        if a.shape() != w.shape() {
            return Err(Stop::Program(format!(
                "an input of shape {:?} does not match the output's shape {:?} (the dask \
                 evaluate does not broadcast)",
                a.shape(),
                w.shape(),
            )));
        }
    }
    let same_grid: Vec<bool> = ins
        .iter()
        .map(|a| a.chunk_shape() == w.chunk_shape())
        .collect();
    let mut recent: Vec<Recent> = ins.iter().map(|_| Recent::default()).collect();
    // One buffer for every chunk of the task (a new one per chunk cost its page faults).
    let mut store: Vec<T> = Vec::new();
    for idx in indices {
        let region = w.region(idx).map_err(Stop::Engine)?;
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        let values = ins
            .iter()
            .zip(&same_grid)
            .zip(&mut recent)
            .map(|((a, &same), recent)| match same {
                true => a.chunk(idx),
                false => a.region(&region, recent),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Stop::Engine)?;
        let n: usize = shape.iter().product();
        store.resize(n, T::zeroed());
        let mut buf = ndarray::ArrayViewMutD::from_shape(IxDyn(&shape), &mut store[..n])
            .expect("a buffer of the region's length");
        let mut z = ZipDyn::new(&shape).overwrite(&mut buf);
        for c in &values {
            z = c.input(z);
        }
        run::elementwise(z, prog, vars, &mut *tick)?;
        drop(values);
        w.write_chunk(idx, &buf).map_err(Stop::Engine)?;
    }
    w.flush().map_err(Stop::Engine)
}

/// Evaluates `expr` over Zarr arrays (`inputs`: (path, dtype) per name, of the output's
/// shape, on any chunk grid) into chunks `indices` of the Zarr array `out` (path, dtype):
/// what one dask task runs.
#[pyfunction]
fn evaluate_chunks(
    py: Python<'_>,
    expr: &str,
    inputs: Vec<(std::path::PathBuf, String)>,
    out: (std::path::PathBuf, String),
    indices: Vec<Vec<usize>>,
) -> PyResult<()> {
    let e = expr::parse(expr).map_err(|e| PyValueError::new_err(e.to_string()))?;
    if e.reduce.is_some() || inputs.len() != e.names.len() {
        return Err(PyValueError::new_err(format!(
            "an elementwise expression over {} Zarr arrays, one per name of {:?}",
            inputs.len(),
            e.names
        )));
    }
    let vars = inputs
        .iter()
        .map(|(_, d)| self::dt(d))
        .collect::<PyResult<Vec<_>>>()?;
    let t = expr::type_of(&e.body, &vars).map_err(type_err)?;
    let want = self::dt(&out.1)?;
    if !can_cast(body_dt(&t), want) {
        return Err(PyTypeError::new_err(format!(
            "Cannot cast the result from dtype('{}') to dtype('{}') with casting rule 'same_kind'",
            body_dt(&t).name(),
            want.name()
        )));
    }
    if vars.contains(&Dt::Bool) || want == Dt::Bool {
        return Err(PyTypeError::new_err("bool Zarr arrays are not read here"));
    }
    let mut prog = vm::Program::compile(&t, &vars, want, vm::BLOCK);
    let ins: Vec<Box<dyn Chunked>> = inputs
        .iter()
        .zip(&vars)
        .map(|((p, _), &ty)| -> PyResult<Box<dyn Chunked>> {
            storage!(ty, T => {
                // SAFETY: the caller's contract: nothing truncates the chunk files meanwhile.
                Ok(Box::new(unsafe { zarr::open::<T>(p) }.map_err(py_err)?))
            })
        })
        .collect::<PyResult<_>>()?;
    let mut tick = |_: u64, _: u64| -> bool {
        Python::attach(|py| match py.check_signals() {
            Ok(()) => true,
            Err(err) => {
                PENDING.with(|c| *c.borrow_mut() = Some(err));
                false
            }
        })
    };
    let r = py.detach(|| {
        storage!(want, T => chunk_task::<T>(&out.0, &ins, &mut prog, &vars, &indices, &mut tick))
    });
    if let Some(err) = PENDING.with(|c| c.borrow_mut().take()) {
        return Err(err);
    }
    r.map_err(py_stop)
}

/// A numpy array's memory, for one call: the Python caller holds the array meanwhile.
struct Raw<T: 'static>(ArrayViewD<'static, T>);
struct RawMut<T: 'static>(ArrayViewMutD<'static, T>);

impl<T: AnyElement> Held for Raw<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(&self.0)
    }
}

impl<T: AnyElement> Held for RawMut<T> {
    fn input<'a, 'o>(&'a self, z: ZipDyn<'a, 'o>) -> ZipDyn<'a, 'o> {
        z.input(&self.0)
    }
    fn output<'a, 'o>(&'a mut self, z: ZipDyn<'a, 'o>) -> Option<ZipDyn<'a, 'o>> {
        Some(z.overwrite(&mut self.0))
    }
}

/// A file mapped by the crate, lent to numpy: `numpy.asarray(map)` is an array over the
/// map's memory (no copy) that keeps the map alive.
#[pyclass(frozen, module = "ndarray_mmap._native")]
struct Map {
    held: Mutex<Box<dyn Held>>,
    ptr: usize,
    shape: Vec<usize>,
    /// In bytes.
    strides: Vec<isize>,
    dtype: Ty,
    writable: bool,
    path: String,
    /// Where its first element is in the file.
    offset: u64,
    /// Copy-on-write: its memory is not the file's once written.
    copy: bool,
}

impl Map {
    fn of(
        held: Box<dyn Held>,
        dtype: Ty,
        writable: bool,
        path: String,
        offset: u64,
        copy: bool,
    ) -> Map {
        let (ptr, shape, strides) = held.layout().unwrap_or_default();
        let size = storage_any!(dtype, T => std::mem::size_of::<T>()) as isize;
        Map {
            held: Mutex::new(held),
            ptr,
            shape,
            strides: strides.iter().map(|s| s * size).collect(),
            dtype,
            writable,
            path,
            offset,
            copy,
        }
    }
}

#[pymethods]
impl Map {
    /// numpy's array interface (version 3): the map's memory, shape, strides and type.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", PyTuple::new(py, &self.shape)?)?;
        d.set_item("strides", PyTuple::new(py, &self.strides)?)?;
        d.set_item("typestr", self.dtype.typestr())?;
        d.set_item("data", (self.ptr, !self.writable))?;
        Ok(d)
    }

    /// Writes the map's changes to the disk (`msync` and `fsync`).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        not_held_here(self).map_err(PyValueError::new_err)?;
        // The lock is taken without the GIL: an evaluate holding it may need the GIL for
        // its progress callback.
        py.detach(|| match self.held.lock() {
            Ok(held) => held.flush().map_err(Some),
            Err(_) => Err(None),
        })
        .map_err(|e| e.map_or_else(|| PyValueError::new_err("a poisoned map"), py_err))
    }

    /// The file.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// Where the first element is in the file (a `.npy` file's header length).
    #[getter]
    fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether writes stay in this process's memory (mode "c", copy-on-write).
    #[getter]
    fn copy_on_write(&self) -> bool {
        self.copy
    }

    fn __repr__(&self) -> String {
        format!(
            "Map({:?}, dtype={}, shape={:?}, writable={})",
            self.path,
            self.dtype.name(),
            self.shape,
            self.writable
        )
    }
}

fn order(o: &str) -> PyResult<Order> {
    match o {
        "C" => Ok(Order::C),
        "F" => Ok(Order::F),
        _ => Err(PyValueError::new_err(format!(
            "order must be 'C' or 'F', not {o:?}"
        ))),
    }
}

/// The element type of a map: one `evaluate` computes in, or one that is only mapped
/// (numpy's float16 and complex numbers: `open` and `create` map them, `evaluate` refuses
/// them by name).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Computed(Dt),
    F16,
    C64,
    C128,
}

impl Ty {
    /// From numpy's `dtype.name`.
    fn from_name(name: &str) -> PyResult<Ty> {
        Ok(match name {
            "float16" => Ty::F16,
            "complex64" => Ty::C64,
            "complex128" => Ty::C128,
            _ => Ty::Computed(Dt::from_name(name).ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "dtype {name:?} is not one ndarray_mmap maps (bool, int8..int64, \
                     uint8..uint64, float16, float32, float64, complex64, complex128)"
                ))
            })?),
        })
    }

    /// numpy's `dtype.name`.
    fn name(self) -> &'static str {
        match self {
            Ty::Computed(d) => d.name(),
            Ty::F16 => "float16",
            Ty::C64 => "complex64",
            Ty::C128 => "complex128",
        }
    }

    /// numpy's type string in native byte order.
    fn typestr(self) -> String {
        let (kind, size) = match self {
            Ty::Computed(d) => return typestr(d),
            Ty::F16 => ('f', 2),
            Ty::C64 => ('c', 8),
            Ty::C128 => ('c', 16),
        };
        format!("{NATIVE}{kind}{size}")
    }

    /// The type `evaluate` computes in: a `TypeError` naming `what` for the others.
    fn computed(self, what: &str) -> PyResult<Dt> {
        match self {
            Ty::Computed(d) => Ok(d),
            other => Err(PyTypeError::new_err(format!(
                "{what} holds {}, which ndarray_mmap maps but evaluate does not compute in \
                 (bool, int8..int64, uint8..uint64, float32, float64)",
                other.name()
            ))),
        }
    }
}

/// The element type of a `.npy` descriptor the crate maps (native byte order).
fn npy_type(descr: &str) -> Option<Ty> {
    Some(match type_code(descr) {
        "f2" => Ty::F16,
        "c8" => Ty::C64,
        "c16" => Ty::C128,
        _ => Ty::Computed(npy_dtype(descr)?),
    })
}

/// numpy's dtype name of a `.npy` descriptor the crate maps.
fn npy_dtype(descr: &str) -> Option<Dt> {
    Some(match type_code(descr) {
        "b1" => Dt::Bool,
        "i1" => Dt::I8,
        "u1" => Dt::U8,
        "i2" => Dt::I16,
        "u2" => Dt::U16,
        "i4" => Dt::I32,
        "u4" => Dt::U32,
        "i8" => Dt::I64,
        "u8" => Dt::U64,
        "f4" => Dt::F32,
        "f8" => Dt::F64,
        _ => return None,
    })
}

/// Maps `path`: a `.npy` file (its header gives the type, shape and order), or a raw file
/// of `dtype` and `shape` (one axis may be -1) from `offset`. `mode`: "r", "r+" or "c".
#[pyfunction]
#[pyo3(signature = (path, dtype=None, shape=None, mode="r", offset=0, order_="C"))]
fn open(
    py: Python<'_>,
    path: std::path::PathBuf,
    dtype: Option<&str>,
    shape: Option<Vec<isize>>,
    mode: &str,
    offset: u64,
    order_: &str,
) -> PyResult<Map> {
    let npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let name = path.display().to_string();
    if npy && (offset != 0 || shape.is_some()) {
        return Err(PyValueError::new_err(format!(
            "{name}: a .npy file's header gives its shape and where its data starts (offset \
             and shape are for raw files)"
        )));
    }
    let (ty, shape, data_at) = if npy {
        let h = py.detach(|| NpyHeader::from_path(&path)).map_err(py_err)?;
        let ty = npy_type(h.descr()).ok_or_else(|| {
            let why = match h.descr().starts_with(FOREIGN) {
                true => {
                    "is not in this machine's byte order (numpy: a.byteswap().view(\
                         a.dtype.newbyteorder()) makes a copy that is)"
                }
                false => "is not one ndarray_mmap maps",
            };
            PyTypeError::new_err(format!("{name}: dtype {:?} {why}", h.descr()))
        })?;
        if let Some(want) = dtype
            && Ty::from_name(want)? != ty
        {
            return Err(PyTypeError::new_err(format!(
                "{name} holds {}, not {want}",
                ty.name()
            )));
        }
        (ty, Vec::new(), h.data_offset() as u64)
    } else {
        let dtype = dtype.ok_or_else(|| {
            PyTypeError::new_err(format!("{name} is not a .npy file: give its dtype"))
        })?;
        (
            Ty::from_name(dtype)?,
            shape.unwrap_or_else(|| vec![-1]),
            offset,
        )
    };
    let opts = MapOptions::new().offset(offset).order(order(order_)?);
    let writable = match mode {
        "r" => false,
        "r+" | "c" => true,
        _ => {
            return Err(PyValueError::new_err(format!(
                "mode must be 'r', 'r+' or 'c', not {mode:?}"
            )));
        }
    };
    let held: Box<dyn Held> = py
        .detach(|| -> Result<Box<dyn Held>, Error> {
            storage_any!(ty, T => {
                // SAFETY: the caller's contract (the README's): no other program truncates
                // or rewrites the file while it is mapped, as with numpy.memmap.
                unsafe {
                    Ok(match (npy, mode) {
                        (true, "r") => Box::new(opts.open_npy::<T>(&path)?),
                        (true, "r+") => Box::new(opts.open_npy_mut::<T>(&path)?),
                        (true, _) => Box::new(opts.open_npy_copy::<T>(&path)?),
                        (false, "r") => Box::new(opts.open::<T>(&path, shape.as_slice())?),
                        (false, "r+") => Box::new(opts.open_mut::<T>(&path, shape.as_slice())?),
                        (false, _) => Box::new(opts.open_copy::<T>(&path, shape.as_slice())?),
                    })
                }
            })
        })
        .map_err(py_err)?;
    Ok(Map::of(held, ty, writable, name, data_at, mode == "c"))
}

/// Creates `path` (a `.npy` file, or raw) of `dtype` and `shape`, zeroed, atomically, its
/// disk space reserved; mapped read-write.
#[pyfunction]
#[pyo3(signature = (path, dtype, shape, order_="C"))]
fn create(
    py: Python<'_>,
    path: std::path::PathBuf,
    dtype: &str,
    shape: Vec<usize>,
    order_: &str,
) -> PyResult<Map> {
    let ty = Ty::from_name(dtype)?;
    let npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let opts = MapOptions::new().order(order(order_)?);
    let name = path.display().to_string();
    if ty == Ty::Computed(Dt::Bool) && npy {
        return Err(PyTypeError::new_err(format!(
            "{name}: bool .npy files are made by numpy (numpy.lib.format.open_memmap), then \
             opened"
        )));
    }
    let held: Box<dyn Held> = py
        .detach(|| -> Result<Box<dyn Held>, Error> {
            storage_any!(ty, T => {
                // SAFETY: the file is new; the caller's contract covers it afterwards.
                unsafe {
                    Ok(if npy {
                        Box::new(opts.create_npy::<T>(&path, shape.as_slice())?)
                    } else {
                        Box::new(opts.create::<T>(&path, shape.as_slice())?)
                    })
                }
            })
        })
        .map_err(py_err)?;
    let data_at = match npy {
        true => py
            .detach(|| NpyHeader::from_path(&path))
            .map_err(py_err)?
            .data_offset() as u64,
        false => 0,
    };
    Ok(Map::of(held, ty, true, name, data_at, false))
}

/// Creates a Zarr v3 array at `path`: `dtype`, `shape`, `chunks`, and a compressor
/// ("zstd", "gzip" or None) with its level.
#[pyfunction]
#[pyo3(signature = (path, dtype, shape, chunks, compressor=None, level=0))]
fn zarr_create(
    py: Python<'_>,
    path: std::path::PathBuf,
    dtype: &str,
    shape: Vec<usize>,
    chunks: Vec<usize>,
    compressor: Option<&str>,
    level: i32,
) -> PyResult<()> {
    let ty = self::dt(dtype)?;
    let comp = match compressor {
        None => None,
        Some("zstd") => Some(Compressor::zstd(level)),
        Some("gzip") => Some(Compressor::gzip(level.max(0) as u32)),
        Some(c) => {
            return Err(PyValueError::new_err(format!(
                "compressor must be 'zstd', 'gzip' or None, not {c:?}"
            )));
        }
    };
    if ty == Dt::Bool {
        return Err(PyTypeError::new_err(
            "bool Zarr arrays are not written here",
        ));
    }
    py.detach(|| -> Result<(), Error> {
        storage!(ty, T => {
            let mut o = CreateOptions::<T>::new();
            if let Some(c) = comp {
                o = o.compressor(c);
            }
            // SAFETY: the array is new.
            let w = unsafe { o.create(&path, shape.as_slice(), chunks.as_slice()) }?;
            w.flush()
        })
    })
    .map_err(py_err)
}

/// Parses `expr`: its operand names in order of first use.
#[pyfunction]
fn names(expr: &str) -> PyResult<Vec<String>> {
    expr::parse(expr)
        .map(|e| e.names)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Types `expr` over operands of `dtypes`: (result dtype, reduction or None, axis or None).
/// The result dtype of a reduction is numpy's (sum of int32 is int64, mean of ints is
/// float64).
#[pyfunction]
fn result_type(expr: &str, dtypes: Vec<String>) -> PyResult<(String, Option<String>, Option<i64>)> {
    let (e, vars) = parse_typed(expr, &dtypes)?;
    let t = expr::type_of(&e.body, &vars).map_err(type_err)?;
    let body = body_dt(&t);
    Ok(match e.reduce {
        None => (body.name().to_string(), None, None),
        Some((r, axis)) => (
            reduced_dt(r, body).name().to_string(),
            Some(format!("{r:?}").to_lowercase()),
            axis,
        ),
    })
}

fn parse_typed(expr: &str, dtypes: &[String]) -> PyResult<(expr::Expr, Vec<Dt>)> {
    let e = expr::parse(expr).map_err(|e| PyValueError::new_err(e.to_string()))?;
    if dtypes.len() != e.names.len() {
        return Err(PyValueError::new_err(format!(
            "{} operand types for {} names",
            dtypes.len(),
            e.names.len()
        )));
    }
    let vars = dtypes
        .iter()
        .map(|d| self::dt(d))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((e, vars))
}

fn body_dt(t: &expr::Typed) -> Dt {
    match t.ty {
        expr::Ty::Array(d) => d,
        expr::Ty::WeakInt => Dt::I64,
        expr::Ty::WeakFloat => Dt::F64,
    }
}

/// numpy's result type of a reduction of values of type `body`.
fn reduced_dt(r: Reduce, body: Dt) -> Dt {
    match r {
        Reduce::Sum if body.is_float() => body,
        Reduce::Sum if matches!(body, Dt::U8 | Dt::U16 | Dt::U32 | Dt::U64) => Dt::U64,
        Reduce::Sum => Dt::I64,
        Reduce::Mean if body.is_float() => body,
        Reduce::Mean => Dt::F64,
        Reduce::Min | Reduce::Max => body,
    }
}

/// An operand from Python: ("map", Map), ("struct", a numpy array's `__array_struct__`,
/// dtype), ("zarr", path, dtype).
fn held_of(op: &Bound<'_, PyTuple>, write: bool) -> PyResult<(Held_, Dt)> {
    let kind: String = op.get_item(0)?.extract()?;
    match kind.as_str() {
        "map" => {
            let m: Py<Map> = op.get_item(1)?.extract()?;
            if write && !m.get().writable {
                return Err(PyValueError::new_err(format!(
                    "{} is mapped read-only",
                    m.get().path
                )));
            }
            let ty = m.get().dtype.computed(&m.get().path)?;
            Ok((Held_::Map(m), ty))
        }
        "struct" => {
            let cap: Bound<'_, PyCapsule> = op.get_item(1)?.extract()?;
            let ty = self::dt(&op.get_item(2)?.extract::<String>()?)?;
            let held = storage!(ty, T => {
                let (ptr, shape, strides) = array_struct(&cap, std::mem::size_of::<T>(), write)?;
                raw::<T>(ptr, &shape, &strides, write)?
            });
            Ok((Held_::Own(held), ty))
        }
        "zarr" => {
            let path: std::path::PathBuf = op.get_item(1)?.extract()?;
            let ty = self::dt(&op.get_item(2)?.extract::<String>()?)?;
            if ty == Dt::Bool {
                return Err(PyTypeError::new_err("bool Zarr arrays are not read here"));
            }
            let held: Box<dyn Held> = storage!(ty, T => {
                // SAFETY: the caller's contract: nothing truncates the chunk files meanwhile.
                unsafe {
                    if write {
                        Box::new(zarr::open_mut::<T>(&path).map_err(py_err)?)
                    } else {
                        Box::new(zarr::open::<T>(&path).map_err(py_err)?)
                    }
                }
            });
            Ok((Held_::Own(held), ty))
        }
        k => Err(PyValueError::new_err(format!("unknown operand kind {k:?}"))),
    }
}

/// An operand held for one call: a Python `Map`, or one opened for the call.
enum Held_ {
    Map(Py<Map>),
    Own(Box<dyn Held>),
}

/// numpy's `PyArrayInterface`, what an array's `__array_struct__` capsule holds (numpy's
/// array interface protocol, version 3). Laid out as numpy's; not every field is read.
#[repr(C)]
#[allow(dead_code)]
struct ArrayInterface {
    two: std::ffi::c_int,
    nd: std::ffi::c_int,
    typekind: std::ffi::c_char,
    itemsize: std::ffi::c_int,
    flags: std::ffi::c_int,
    shape: *const isize,
    strides: *const isize,
    data: *mut std::ffi::c_void,
    descr: *mut std::ffi::c_void,
}

/// The memory of a numpy array from its `__array_struct__` (a capsule the caller holds,
/// which holds the array): address, shape and strides in bytes. Read this way because
/// `__array_interface__` builds a dict on each call (2.4 us against 0.1 us, a tenth of a
/// small evaluate). Checked: numpy's own mark (`two`), the element size, native byte order,
/// alignment, and write access for an output.
fn array_struct(
    cap: &Bound<'_, PyCapsule>,
    itemsize: usize,
    write: bool,
) -> PyResult<(usize, Vec<usize>, Vec<isize>)> {
    const ALIGNED: std::ffi::c_int = 0x0100;
    const NOTSWAPPED: std::ffi::c_int = 0x0200;
    const WRITEABLE: std::ffi::c_int = 0x0400;
    let p = cap.pointer_checked(None)?.cast::<ArrayInterface>();
    // SAFETY: numpy's `__array_struct__` is an unnamed capsule (checked by
    // `pointer_checked(None)`) holding a `PyArrayInterface`, alive as long as the capsule,
    // which the caller holds for this call; `two == 2` is the protocol's own check.
    let a = unsafe { p.as_ref() };
    let bad = |why: &str| Err(PyValueError::new_err(format!("__array_struct__: {why}")));
    if a.two != 2 {
        return bad("not numpy's array interface");
    }
    if usize::try_from(a.itemsize).ok() != Some(itemsize) {
        return bad(&format!("{}-byte elements, not {itemsize}", a.itemsize));
    }
    if a.flags & (ALIGNED | NOTSWAPPED) != ALIGNED | NOTSWAPPED {
        return bad("misaligned, or not in native byte order (copy it first)");
    }
    if write && a.flags & WRITEABLE == 0 {
        return bad("the output is not writeable");
    }
    let Ok(nd) = usize::try_from(a.nd) else {
        return bad("a negative number of dimensions");
    };
    if nd > 0 && (a.shape.is_null() || a.strides.is_null()) {
        return bad("no shape or strides");
    }
    let (shape, strides): (&[isize], &[isize]) = if nd == 0 {
        (&[], &[])
    } else {
        // SAFETY: numpy fills `shape` and `strides` with `nd` entries each (non-null,
        // checked above), alive with the interface.
        unsafe {
            (
                std::slice::from_raw_parts(a.shape, nd),
                std::slice::from_raw_parts(a.strides, nd),
            )
        }
    };
    let Ok(shape) = shape.iter().map(|&n| usize::try_from(n)).collect() else {
        return bad("a negative length");
    };
    Ok((a.data as usize, shape, strides.to_vec()))
}

/// A view of a numpy array's memory (`strides` in bytes: multiples of the element size,
/// not negative, checked by the Python side and again here).
fn raw<T: AnyElement>(
    ptr: usize,
    shape: &[usize],
    strides: &[isize],
    write: bool,
) -> PyResult<Box<dyn Held>> {
    let size = std::mem::size_of::<T>() as isize;
    if !ptr.is_multiple_of(std::mem::align_of::<T>())
        || shape.len() != strides.len()
        || strides.iter().any(|&s| s < 0 || s % size != 0)
    {
        return Err(PyValueError::new_err(
            "an array that is misaligned, or with negative or uneven strides (copy it first)",
        ));
    }
    let el: Vec<usize> = strides.iter().map(|&s| (s / size) as usize).collect();
    let dim = IxDyn(shape).strides(IxDyn(&el));
    // SAFETY: the Python side passes the memory of a live numpy array that it holds for
    // the whole call (pointer, shape and strides read from its `__array_struct__`),
    // aligned, with non-negative strides in whole elements (checked above).
    unsafe {
        Ok(if write {
            Box::new(RawMut(ArrayViewMutD::from_shape_ptr(dim, ptr as *mut T)))
        } else {
            Box::new(Raw(ArrayViewD::from_shape_ptr(dim, ptr as *const T)))
        })
    }
}

/// A reduction's result: its bytes, shape and dtype name.
type Reduced<'py> = (Bound<'py, PyBytes>, Vec<usize>, String);

/// Evaluates `expr` over `operands` (one per name, in order). Elementwise: into `out` (an
/// operand of the result's shape). A reduction: returns (bytes, shape, dtype) of the
/// result. `shape` is the broadcast shape of the operands; `progress(done, total)` is
/// called between chunks, and Ctrl-C cancels there.
#[pyfunction]
#[pyo3(signature = (expr, operands, shape, out=None, out_dtype=None, progress=None))]
fn evaluate<'py>(
    py: Python<'py>,
    expr: &str,
    operands: Vec<Bound<'py, PyTuple>>,
    shape: Vec<usize>,
    out: Option<Bound<'py, PyTuple>>,
    out_dtype: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Option<Reduced<'py>>> {
    let e = cache::parsed(expr)?;
    if operands.len() != e.names.len() {
        return Err(PyValueError::new_err(format!(
            "{} operands for the names {:?}",
            operands.len(),
            e.names
        )));
    }
    let mut helds = Vec::new();
    let mut vars = Vec::new();
    for op in &operands {
        let (h, ty) = held_of(op, false)?;
        helds.push(h);
        vars.push(ty);
    }
    let t = cache::typed(expr, &e, &vars)?;
    let body = body_dt(&t);
    let mut out_held = match &out {
        Some(o) => Some(held_of(o, true)?),
        None => None,
    };
    // The elementwise result is cast to the output's type (numpy's same-kind rule).
    let want = match (&out_held, out_dtype) {
        (Some((_, ty)), _) => *ty,
        (None, Some(d)) => self::dt(d)?,
        (None, None) => body,
    };
    if e.reduce.is_none() && !can_cast(body, want) {
        return Err(PyTypeError::new_err(format!(
            "Cannot cast the result from dtype('{}') to dtype('{}') with casting rule 'same_kind'",
            body.name(),
            want.name()
        )));
    }
    let block = shape.iter().product::<usize>();
    let prog_out = if e.reduce.is_some() { body } else { want };
    let (prog_key, mut prog) = cache::program(expr, &t, &vars, prog_out, block);
    let reduce = e.reduce;
    let progress = progress.map(|p| p.into_any());
    let mut tick = |done: u64, total: u64| -> bool {
        Python::attach(|py| {
            if let Some(p) = &progress
                && let Err(err) = p.call1(py, (done, total))
            {
                PENDING.with(|c| *c.borrow_mut() = Some(err));
                return false;
            }
            match py.check_signals() {
                Ok(()) => true,
                Err(err) => {
                    PENDING.with(|c| *c.borrow_mut() = Some(err));
                    false
                }
            }
        })
    };
    // The maps the Python objects hold, locked for the call.
    let maps: Vec<Option<Py<Map>>> = helds
        .iter()
        .map(|h| match h {
            Held_::Map(m) => Some(m.clone_ref(py)),
            Held_::Own(_) => None,
        })
        .collect();
    let out_map = match &out_held {
        Some((Held_::Map(m), _)) => Some(m.clone_ref(py)),
        _ => None,
    };
    let result = py.detach(|| -> Result<Option<Acc>, Stop> {
        // Each distinct map locked once (one map may be several operands).
        let mut distinct: Vec<&Py<Map>> = Vec::new();
        let slot: Vec<Option<usize>> = maps
            .iter()
            .map(|m| {
                m.as_ref()
                    .map(|m| match distinct.iter().position(|d| d.is(m)) {
                        Some(k) => k,
                        None => {
                            distinct.push(m);
                            distinct.len() - 1
                        }
                    })
            })
            .collect();
        if let Some(o) = &out_map
            && distinct.iter().any(|d| d.is(o))
        {
            return Err(Stop::Program(
                "the output is also an input: pass it as a numpy array".into(),
            ));
        }
        let poisoned = |_| Stop::Program("a poisoned map".into());
        let mut all: Vec<&Map> = distinct.iter().map(|m| m.get()).collect();
        all.extend(out_map.as_ref().map(|m| m.get()));
        for m in &all {
            not_held_here(m).map_err(Stop::Program)?;
        }
        let _marked = Marked::new(&all);
        // Locked in one order, by address, whatever the operands' order: two calls over
        // the same maps named in opposite orders would otherwise wait on each other forever.
        let mut by_address: Vec<usize> = (0..all.len()).collect();
        by_address.sort_by_key(|&k| std::ptr::from_ref::<Map>(all[k]) as usize);
        let mut locked: Vec<Option<_>> = all.iter().map(|_| None).collect();
        for k in by_address {
            locked[k] = Some(all[k].held.lock().map_err(poisoned)?);
        }
        let mut out_guard = match out_map {
            Some(_) => locked.pop().flatten(),
            None => None,
        };
        let guards: Vec<_> = locked.into_iter().flatten().collect();
        let mut z = ZipDyn::new(&shape);
        // The output first: it leads the chunking.
        let out_ref: Option<&mut Box<dyn Held>> = match (&mut out_guard, &mut out_held) {
            (Some(g), _) => Some(&mut **g),
            (None, Some((Held_::Own(h), _))) => Some(h),
            _ => None,
        };
        if let Some(o) = out_ref {
            z = o
                .output(z)
                .ok_or_else(|| Stop::Program("the output is read-only".into()))?;
        }
        for (h, k) in helds.iter().zip(&slot) {
            z = match (h, k) {
                (Held_::Own(h), _) => h.input(z),
                (Held_::Map(_), Some(k)) => {
                    let held: &dyn Held = &**guards[*k];
                    held.input(z)
                }
                (Held_::Map(_), None) => return Err(Stop::Program("a map without a slot".into())),
            };
        }
        match reduce {
            None => run::elementwise(z, &mut prog, &vars, &mut tick).map(|()| None),
            Some((r, axis)) => {
                let axis = match axis {
                    None => None,
                    Some(a) => {
                        let n = shape.len() as i64;
                        let k = if a < 0 { a + n } else { a };
                        if !(0..n).contains(&k) {
                            return Err(Stop::Program(format!(
                                "axis {a} is out of bounds for array of dimension {n}"
                            )));
                        }
                        Some(k as usize)
                    }
                };
                let acc_shape: Vec<usize> = match axis {
                    None => Vec::new(),
                    Some(k) => shape
                        .iter()
                        .enumerate()
                        .filter(|(d, _)| *d != k)
                        .map(|(_, &n)| n)
                        .collect(),
                };
                let mut acc = run::start(r, body, &acc_shape);
                run::reduce(z, &mut prog, &vars, r, axis, &mut acc, &mut tick)?;
                Ok(Some(acc))
            }
        }
    });
    cache::give_back(prog_key, prog);
    // An output this call opened (a Zarr array by path) is made durable before the call
    // returns: nothing else holds it to flush later.
    let result = match (result, &out_held) {
        (Ok(r), Some((Held_::Own(h), _))) => {
            py.detach(|| h.flush()).map(|()| r).map_err(Stop::Engine)
        }
        (r, _) => r,
    };
    // An exception from the progress callback or a signal, even on the last call (which
    // cannot cancel anything any more), is the caller's to see.
    if let Some(err) = PENDING.with(|c| c.borrow_mut().take()) {
        return Err(err);
    }
    let acc = result.map_err(py_stop)?;
    let Some(acc) = acc else { return Ok(None) };
    let (r, axis) = reduce.unwrap_or((Reduce::Sum, None));
    let count: usize = match axis {
        None => shape.iter().product(),
        Some(a) => {
            let n = shape.len() as i64;
            shape[(if a < 0 { a + n } else { a }) as usize]
        }
    };
    let res = reduced_dt(r, body);
    let (bytes, rshape) = finish(acc, r, res, count);
    Ok(Some((
        PyBytes::new(py, &bytes),
        rshape,
        res.name().to_string(),
    )))
}

thread_local! {
    /// The maps an evaluate on this thread holds locked (their addresses): a progress
    /// callback that flushes one, or evaluates over one again, gets an error instead of
    /// waiting for itself.
    static LOCKED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Refuses a map this thread's evaluate holds (see [`LOCKED`]).
fn not_held_here(m: &Map) -> Result<(), String> {
    let addr = m as *const Map as usize;
    match LOCKED.with(|l| l.borrow().contains(&addr)) {
        true => Err(format!(
            "{} is being written or read by an evaluate on this thread (its progress callback \
             called this): flush or evaluate it after that evaluate returns",
            m.path
        )),
        false => Ok(()),
    }
}

/// Marks maps locked by this thread's evaluate until dropped.
struct Marked(Vec<usize>);

impl Marked {
    fn new(maps: &[&Map]) -> Marked {
        let addrs: Vec<usize> = maps.iter().map(|m| *m as *const Map as usize).collect();
        LOCKED.with(|l| l.borrow_mut().extend(&addrs));
        Marked(addrs)
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        LOCKED.with(|l| l.borrow_mut().retain(|a| !self.0.contains(a)));
    }
}

/// What stopped a stream, as the Python exception to raise (a caller's cancel: the
/// exception its callback or signal handler raised).
fn py_stop(stop: Stop) -> PyErr {
    match stop {
        Stop::Engine(e) => py_err(e),
        Stop::Program(msg) => PyValueError::new_err(msg),
        Stop::Caller => PENDING
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| PyKeyboardInterrupt::new_err("cancelled")),
    }
}

thread_local! {
    /// The Python exception that stopped a stream (raised by the progress callback or a
    /// signal handler), handed from the callback to the caller on the same thread.
    static PENDING: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// numpy's `same_kind` casting from `from` to `to`.
fn can_cast(from: Dt, to: Dt) -> bool {
    // numpy's kinds in order: b < u < i < f; same_kind casts never go down.
    let rank = |d: Dt| match d {
        Dt::Bool => 0,
        Dt::U8 | Dt::U16 | Dt::U32 | Dt::U64 => 1,
        d if d.is_int() => 2,
        _ => 3,
    };
    rank(from) <= rank(to)
}

/// The reduction's result as numpy bytes of type `res`, and its shape.
fn finish(acc: Acc, r: Reduce, res: Dt, count: usize) -> (Vec<u8>, Vec<usize>) {
    macro_rules! bytes {
        ($it:expr) => {
            dispatch!(res, T => {
                let v: Vec<T> = $it.collect();
                let mut out = Vec::with_capacity(v.len() * std::mem::size_of::<T>());
                for x in v {
                    out.extend_from_slice(vm_bytes(&x));
                }
                out
            })
        };
    }
    match acc {
        Acc::F(a) => {
            let shape = a.shape().to_vec();
            let mean = r == Reduce::Mean;
            (
                bytes!(a.iter().map(|&x| <T as vm::E>::from_f64(if mean {
                    x / count as f64
                } else {
                    x
                }))),
                shape,
            )
        }
        Acc::I(a) => {
            let shape = a.shape().to_vec();
            if r == Reduce::Mean {
                (
                    bytes!(
                        a.iter()
                            .map(|&x| <T as vm::E>::from_f64(x as f64 / count as f64))
                    ),
                    shape,
                )
            } else {
                (bytes!(a.iter().map(|&x| <T as vm::E>::from_i128(x))), shape)
            }
        }
    }
}

/// The bytes of one element.
fn vm_bytes<T: vm::E>(x: &T) -> &[u8] {
    // SAFETY: every `vm::E` type is a plain number (or `B8`, one byte) with no padding,
    // so its memory is `size_of::<T>()` initialized bytes.
    unsafe { std::slice::from_raw_parts((x as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Map>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(create, m)?)?;
    m.add_function(wrap_pyfunction!(zarr_create, m)?)?;
    m.add_function(wrap_pyfunction!(names, m)?)?;
    m.add_function(wrap_pyfunction!(result_type, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_chunks, m)?)?;
    Ok(())
}
