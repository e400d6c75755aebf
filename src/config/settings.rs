//! The settings table: each setting is declared once (key, type, default, doc and
//! how it is read), and the struct, its `Default`, the conversion from the
//! canonical tree and the export to YAML are generated from that declaration.
//!
//! Why not `serde` derive (with `serde_ignored` for unknown keys): the loader has
//! to keep file:line:column and the dotted key path on every type error, its own
//! messages ("expected true or false, found integer 1", "… is out of range
//! 0..=65535"), "not supported by wirebeat" next to "unknown setting" warnings,
//! aliases read in a fixed order (`strip_authorization` before
//! `redact_authorization`), settings folded from other keys (`host`/`port` into
//! `hosts`), and the ports of each protocol remembered with their position for
//! the "claimed by both" check. A derived `Deserialize` over the positioned tree
//! would need all of that put back by hand per field (custom deserializers or
//! post-passes), so the table drives the existing positioned loader instead.
//!
//! Declaration syntax, inside [`settings!`]:
//!
//! ```text
//! pub struct Section {
//!     /// doc
//!     key: Type = default => kind;
//!     ...
//! }
//! unsupported ["packetbeat_key", ...]
//! ```
//!
//! where `kind` is one of
//! - `bool`, `text` (String), `opt_text` (`Option<String>`, null = unset),
//!   `nonblank_text` (like `opt_text`, blank = unset),
//!   `secret` (like `opt_text`, exported as `<redacted>`), `texts` (`Vec<String>`,
//!   a single string is a list of one), `duration`, `int(min, max)`,
//! - `choice` (a [`Choice`] enum; null = the default),
//! - `one_of(NAMES)` (a String limited to NAMES; null = the default),
//!   `opt_one_of(NAMES)` (the same for `Option<String>`),
//! - `hosts(PORT)` (a list of `host:port`, with the 1.x `host`/`port` pair
//!   folded in, PORT when only `host` is given),
//! - `bool_or(ALIAS)` (a bool also accepted under an older name, read first),
//! - `custom(read_fn, write_fn)` (read and exported by the named functions, at
//!   this position),
//! - `flatten` (a section declared with [`settings!`] whose settings sit at
//!   this level, like the options every protocol has),
//! - `skip` (in the struct and its default only; read and exported by another
//!   entry's functions, e.g. `backoff_max` with `backoff_init`).
//!
//! The key is the field name. The generated `read_section` opens the mapping,
//! reads the settings in declaration order, reports the listed Packetbeat keys
//! as not supported, and warns about every key left (unknown, with its full
//! path); `write_settings` exports them in the same order.

use super::convert::{Ctx, Fields};
use super::error::ConfigError;

/// A setting that takes one of a few names.
pub trait Choice: Copy + Default + Sized + 'static {
    /// Every accepted name, in the order error messages list them.
    const NAMES: &'static [&'static str];
    fn from_name(name: &str) -> Option<Self>;
    fn as_str(self) -> &'static str;
}

/// Declares an enum setting and its names once.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            #[default]
            $(#[$dmeta:meta])* $dvariant:ident = $dtext:literal,
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub enum $name {
            #[default]
            $(#[$dmeta])* $dvariant,
            $( $(#[$vmeta])* $variant, )*
        }

        impl $crate::config::Choice for $name {
            const NAMES: &'static [&'static str] = &[$dtext, $($text),*];
            fn from_name(name: &str) -> Option<Self> {
                match name {
                    $dtext => Some($name::$dvariant),
                    $( $text => Some($name::$variant), )*
                    _ => None,
                }
            }
            fn as_str(self) -> &'static str {
                match self {
                    $name::$dvariant => $dtext,
                    $( $name::$variant => $text, )*
                }
            }
        }

        impl $name {
            /// The setting's configuration name.
            pub fn as_str(self) -> &'static str {
                <$name as $crate::config::Choice>::as_str(self)
            }
        }
    };
}

/// Reads one setting of a generated section.
macro_rules! read_setting {
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, bool) => {
        $f.bool($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, text) => {
        $f.string($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, opt_text) => {
        $f.opt_string($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, nonblank_text) => {{
        $f.opt_string($ctx, stringify!($field), &mut $this.$field)?;
        if $this.$field.as_deref().is_some_and(|s| s.trim().is_empty()) {
            $this.$field = None;
        }
    }};
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, secret) => {
        $f.opt_string($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, texts) => {
        $f.strings($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, duration) => {
        $f.duration($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, retries) => {
        $f.retries($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, int($min:expr, $max:expr)) => {
        $f.int($ctx, stringify!($field), &mut $this.$field, $min, $max)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, choice) => {
        $f.pick($ctx, stringify!($field), &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, one_of($names:expr)) => {{
        let mut value = Some(std::mem::take(&mut $this.$field));
        $f.choice($ctx, stringify!($field), $names, &mut value)?;
        $this.$field = value.unwrap_or_else(|| $default);
    }};
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, opt_one_of($names:expr)) => {
        $f.choice($ctx, stringify!($field), $names, &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, bool_or($alias:expr)) => {{
        $f.bool($ctx, $alias, &mut $this.$field)?;
        $f.bool($ctx, stringify!($field), &mut $this.$field)?;
    }};
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, custom($read:path, $write:path)) => {
        $read($this, $f, $ctx)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, hosts($port:expr)) => {
        $crate::config::convert::fold_host_port($f, $ctx, $port, &mut $this.$field)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, flatten) => {
        $this.$field.read_settings($f, $ctx)?
    };
    ($f:ident, $ctx:ident, $this:ident, $field:ident, $default:expr, skip) => {};
}

/// Exports one setting of a generated section.
macro_rules! write_setting {
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, bool) => {
        $w.kv($i, stringify!($field), $this.$field)
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, text) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::q(&$this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, opt_text) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::opt(&$this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, nonblank_text) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::opt(&$this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, secret) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::secret(&$this.$field, $r),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, texts) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::list(&$this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, duration) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::dur($this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, retries) => {
        $w.kv($i, stringify!($field), $this.$field)
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, int($min:expr, $max:expr)) => {
        $w.kv($i, stringify!($field), $this.$field)
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, choice) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::q($this.$field.as_str()),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, one_of($names:expr)) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::q(&$this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, opt_one_of($names:expr)) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::opt(&$this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, bool_or($alias:expr)) => {
        $w.kv($i, stringify!($field), $this.$field)
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, custom($read:path, $write:path)) => {
        $write($this, $w, $i, $r)
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, hosts($port:expr)) => {
        $w.kv(
            $i,
            stringify!($field),
            $crate::config::export::list(&$this.$field),
        )
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, flatten) => {
        $this.$field.write_settings($w, $i, $r)
    };
    ($w:ident, $i:ident, $r:ident, $this:ident, $field:ident, skip) => {};
}

/// Declares a section of settings once; see the module documentation.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty = $default:expr => $kind:ident $( ( $($arg:tt)* ) )? ;
            )*
        }
        unsupported [ $($u:literal),* $(,)? ]
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $name {
            /// Reads the declared settings from `f`, in declaration order (the
            /// `skip` ones are the section's to read).
            #[allow(unused_variables)]
            pub(in $crate::config) fn read_settings(
                &mut self,
                f: &mut $crate::config::convert::Fields,
                ctx: &mut $crate::config::convert::Ctx,
            ) -> Result<(), $crate::config::ConfigError> {
                let this = self;
                $( read_setting!(f, ctx, this, $field, $default, $kind $( ( $($arg)* ) )?); )*
                Ok(())
            }

            /// Packetbeat keys of this section that wirebeat accepts and ignores
            /// (reported as not supported rather than unknown). Protocol
            /// sections are read by the protocols table, which uses the common
            /// list, so some sections never use these two.
            #[allow(dead_code)]
            pub(in $crate::config) const UNSUPPORTED: &'static [&'static str] = &[$($u),*];

            /// Reads the section at `path`: its settings, then its unsupported
            /// keys, then a warning for every key left.
            #[allow(dead_code)]
            pub(in $crate::config) fn read_section(
                &mut self,
                node: $crate::config::tree::Node,
                path: &str,
                ctx: &mut $crate::config::convert::Ctx,
            ) -> Result<(), $crate::config::ConfigError> {
                let mut f = $crate::config::convert::Fields::of(node, path, ctx)?;
                self.read_settings(&mut f, ctx)?;
                f.unsupported(ctx, Self::UNSUPPORTED);
                f.finish(ctx);
                Ok(())
            }

            /// Exports the declared settings at `indent`, in declaration order.
            #[allow(unused_variables)]
            pub(in $crate::config) fn write_settings(
                &self,
                w: &mut $crate::config::export::W,
                indent: usize,
                redact: bool,
            ) {
                let this = self;
                $( write_setting!(w, indent, redact, this, $field, $kind $( ( $($arg)* ) )?); )*
            }
        }
    };
}

impl Fields {
    /// A [`Choice`] setting: absent = unchanged, null = the default, otherwise one
    /// of its names.
    pub fn pick<T: Choice>(
        &mut self,
        ctx: &Ctx,
        name: &str,
        slot: &mut T,
    ) -> Result<(), ConfigError> {
        let mut value = Some(slot.as_str().to_string());
        self.choice(ctx, name, T::NAMES, &mut value)?;
        *slot = value.as_deref().and_then(T::from_name).unwrap_or_default();
        Ok(())
    }
}

/// Declares the protocols once: name (the configuration key), settings type,
/// default, and the Packetbeat keys of the section wirebeat does not support.
/// Generates [`ProtocolsConfig`](super::ProtocolsConfig), its default, the
/// by-name access to the common options, and the reading and export of every
/// protocol section (in declaration order).
macro_rules! protocols {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$pmeta:meta])*
                $proto:ident : $ty:ty = $default:expr, unsupported [ $($u:literal),* $(,)? ];
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$pmeta])* pub $proto: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $proto: $default, )* }
            }
        }

        impl $name {
            /// The common options of a protocol by its configuration name.
            pub fn common(&self, name: &str) -> Option<&ProtoCommon> {
                match name {
                    $( stringify!($proto) => Some(HasCommon::common(&self.$proto)), )*
                    _ => None,
                }
            }

            pub fn common_mut(&mut self, name: &str) -> Option<&mut ProtoCommon> {
                match name {
                    $( stringify!($proto) => Some(HasCommon::common_mut(&mut self.$proto)), )*
                    _ => None,
                }
            }

            /// Reads the section of protocol `name`; returns the section's
            /// unsupported keys, or `None` when wirebeat has no such protocol.
            pub(in $crate::config) fn read_section(
                &mut self,
                name: &str,
                f: &mut $crate::config::convert::Fields,
                ctx: &mut $crate::config::convert::Ctx,
            ) -> Option<Result<&'static [&'static str], $crate::config::ConfigError>> {
                match name {
                    $(
                        stringify!($proto) => Some(
                            self.$proto
                                .read_settings(f, ctx)
                                .map(|()| &[$($u),*][..]),
                        ),
                    )*
                    _ => None,
                }
            }

            /// Exports every protocol section under `protocols:`.
            pub(in $crate::config) fn write_sections(
                &self,
                w: &mut $crate::config::export::W,
                redact: bool,
            ) {
                $(
                    w.section(2, stringify!($proto));
                    self.$proto.write_settings(w, 4, redact);
                )*
            }
        }
    };
}
