//! The plain C declaration static that the host reads before running any plugin code.

use std::mem::{align_of, offset_of, size_of};

/// The symbol under which every plugin exports its [`PluginDeclaration`].
pub const DECLARATION_SYMBOL: &[u8] = b"sluice_plugin_declaration\0";

/// Magic bytes at the start of the declaration.
pub const MAGIC: [u8; 8] = *b"SLUICEPL";

/// Fixed-layout facts about a plugin library, readable with `dlopen` + `dlsym` alone.
///
/// Only plain integers and byte arrays: no pointers, nothing to run. The struct may grow at the
/// end (`decl_size` says how much the plugin wrote).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PluginDeclaration {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// `size_of::<PluginDeclaration>()` in the plugin.
    pub decl_size: u32,
    /// The plugin ABI major it was built for.
    pub abi_major: u32,
    /// The plugin ABI minor it was built for.
    pub abi_minor: u32,
    /// 1 when built with `panic = "unwind"` (required: otherwise panics cannot be contained).
    pub panic_unwind: u32,
    /// Hash of the sizes, alignments and field offsets of every ABI type ([`layout_fingerprint`]).
    pub layout_fingerprint: u64,
    /// The sluice-abi crate version (NUL-padded).
    pub abi_crate_version: [u8; 32],
    /// The rustc that built the plugin (NUL-padded), for messages only.
    pub rustc_version: [u8; 96],
    /// The target triple (NUL-padded).
    pub target: [u8; 64],
}

const fn padded<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() && i < N - 1 {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

fn unpad(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl PluginDeclaration {
    /// The declaration of a library built with this crate, ABI and compiler.
    pub const fn current() -> Self {
        Self {
            magic: MAGIC,
            decl_size: size_of::<Self>() as u32,
            abi_major: crate::ABI_MAJOR,
            abi_minor: crate::ABI_MINOR,
            panic_unwind: cfg!(panic = "unwind") as u32,
            layout_fingerprint: layout_fingerprint(),
            abi_crate_version: padded(env!("CARGO_PKG_VERSION")),
            rustc_version: padded(env!("SLUICE_RUSTC_VERSION")),
            target: padded(env!("SLUICE_TARGET")),
        }
    }

    /// [`Self::current`] declaring another ABI version (for tests of the version check).
    pub const fn with_abi(mut self, major: u32, minor: u32) -> Self {
        self.abi_major = major;
        self.abi_minor = minor;
        self
    }

    /// Whether the magic bytes are ours.
    pub fn check_magic(&self) -> bool {
        self.magic == MAGIC
    }

    /// The rustc version string.
    pub fn rustc_version(&self) -> String {
        unpad(&self.rustc_version)
    }

    /// The target triple.
    pub fn target(&self) -> String {
        unpad(&self.target)
    }

    /// The sluice-abi crate version.
    pub fn abi_crate_version(&self) -> String {
        unpad(&self.abi_crate_version)
    }
}

const fn mix(mut hash: u64, value: usize) -> u64 {
    // FNV-1a over the little-endian bytes of `value`
    let bytes = (value as u64).to_le_bytes();
    let mut i = 0;
    while i < 8 {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! fingerprint {
    ($hash:ident; $($ty:ty { $($field:ident),* });* $(;)?) => {{
        $(
            $hash = mix($hash, size_of::<$ty>());
            $hash = mix($hash, align_of::<$ty>());
            $( $hash = mix($hash, offset_of!($ty, $field)); )*
        )*
        $hash
    }};
}

/// A hash over `size_of`, `align_of` and field offsets of every ABI type.
///
/// abi_stable's layout check already compares types recursively; the fingerprint is the second
/// line of defence that works without abi_stable, and makes a mismatch visible in messages.
pub const fn layout_fingerprint() -> u64 {
    use crate::*;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    hash = mix(hash, crate::ABI_MAJOR as usize);
    fingerprint!(hash;
        ArrowSchema { format, name, metadata, flags, n_children, children, dictionary, release, private_data };
        ArrowArray { length, null_count, offset, n_buffers, n_children, buffers, children, dictionary, release, private_data };
        ArrowArrayStream { get_schema, get_next, get_last_error, release, private_data };
        FfiError { code, retryable, message, details_json };
        FfiCancel {};
        HostApi { ctx, max_level, vtable };
        FfiSource { vtable, private_data };
        FfiResourceStream { arrow, vtable, private_data };
        FfiDestination { vtable, private_data };
        FfiDestinationClient { vtable, private_data };
        PluginDeclaration { magic, decl_size, abi_major, abi_minor, panic_unwind, layout_fingerprint, abi_crate_version, rustc_version, target };
    )
}

// Compile-time layout assertions of the ABI structs (x86_64 / aarch64, 64-bit pointers).
const _: () = {
    use crate::*;
    assert!(size_of::<PluginDeclaration>() == 224);
    assert!(align_of::<PluginDeclaration>() == 8);
    assert!(offset_of!(PluginDeclaration, layout_fingerprint) == 24);
    assert!(size_of::<FfiError>() == 72);
    assert!(align_of::<FfiError>() == 8);
    assert!(size_of::<FfiCancel>() == 32);
    assert!(size_of::<HostApi>() == 24);
    assert!(size_of::<FfiSource>() == 16);
    assert!(size_of::<FfiDestination>() == 16);
    assert!(size_of::<FfiDestinationClient>() == 16);
    assert!(size_of::<FfiResourceStream>() == 56);
    assert!(align_of::<FfiResourceStream>() == 8);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_records_the_build() {
        let d = PluginDeclaration::current();
        assert!(d.check_magic());
        assert_eq!(
            d.panic_unwind, 1,
            "workspace profiles must use panic = \"unwind\""
        );
        assert!(d.rustc_version().starts_with("rustc "));
        assert!(!d.target().is_empty());
        assert_eq!(d.layout_fingerprint, layout_fingerprint());
        let other = d.with_abi(99, 3);
        assert_eq!((other.abi_major, other.abi_minor), (99, 3));
    }
}
