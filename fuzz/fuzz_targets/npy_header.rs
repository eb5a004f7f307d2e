//! Any bytes → `NpyHeader::parse` returns `Ok` or `Err`, never panics. An `Ok` header
//! lies inside the input, its messages format, and writing it again parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ndarray_mmap::NpyHeader;

fuzz_target!(|data: &[u8]| {
    match NpyHeader::parse(data) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(h) => {
            assert!(h.data_offset() <= data.len());
            if let Err(e) = h.check_element::<f64>() {
                let _ = e.to_string();
            }
            let _ = h.check_element::<u8>();
            if let Ok(again) = NpyHeader::with_version(h.descr(), h.shape(), h.order(), h.version()) {
                let bytes = again.to_bytes();
                assert_eq!(bytes.len(), again.data_offset());
                assert_eq!(NpyHeader::parse(&bytes).unwrap(), again);
            }
        }
    }
});
