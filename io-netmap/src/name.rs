//! netmap port names (`netmap:eth0-2`, `vale0:p1`, `netmap:eth0{1`, `netmap:eth0^`) parsed
//! into what the kernel's `NETMAP_REQ_REGISTER` request takes: the name it knows the port
//! by, a ring-binding mode and a ring id.
//!
//! The grammar is libnetmap's (`nmport_parse`), restricted to what this backend drives:
//!
//! ```text
//! netmap:IFNAME[SUFFIX][/x]      a NIC (or any port the kernel knows by IFNAME)
//! valeS:PORT[SUFFIX][/x]         a port of the VALE software switch S
//! SUFFIX := ""                   all hardware rings          (NR_REG_ALL_NIC)
//!         | "-" N                hardware ring pair N only   (NR_REG_ONE_NIC)
//!         | "^"                  the host (software) rings    (NR_REG_SW)
//!         | "*"                  hardware and host rings      (NR_REG_NIC_SW)
//!         | "{" ID               master end of pipe ID        (part of the kernel name)
//!         | "}" ID               slave end of pipe ID         (part of the kernel name)
//! /x                             exclusive access to the bound rings (NR_EXCLUSIVE)
//! ```
//!
//! Pipes stay in the kernel name because API 14 kernels parse `x{y` / `x}y` themselves
//! (`NR_REG_PIPE_MASTER`/`SLAVE` are deprecated). Everything else (`@` options, other
//! `/` flags, monitor ports) is refused with a clear error rather than half-supported.

use core::fmt;
use core::str::FromStr;

/// netmap's `NETMAP_REQ_IFNAMSIZ`: the kernel name, with its NUL, fits in 64 bytes.
pub const REQ_IFNAMSIZ: usize = 64;
/// netmap's `NETMAP_RING_MASK`: ring ids are below 4096.
pub const MAX_RING_ID: u16 = 0x0fff;

/// Which rings a registration binds (netmap's `NR_REG_*` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingMode {
    /// Every hardware ring pair (`NR_REG_ALL_NIC`); also what pipes and VALE ports use.
    AllNic,
    /// One hardware ring pair (`NR_REG_ONE_NIC` with `nr_ringid`).
    OneNic(u16),
    /// The host rings only (`NR_REG_SW`): frames to and from the host's own stack.
    Host,
    /// Hardware and host rings (`NR_REG_NIC_SW`).
    NicAndHost,
}

impl RingMode {
    /// The `NR_REG_*` value.
    pub fn nr_mode(self) -> u32 {
        match self {
            RingMode::AllNic => 1,
            RingMode::Host => 2,
            RingMode::NicAndHost => 3,
            RingMode::OneNic(_) => 4,
        }
    }

    /// The `nr_ringid` value.
    pub fn ring_id(self) -> u16 {
        match self {
            RingMode::OneNic(r) => r,
            _ => 0,
        }
    }
}

/// What kind of port a name designates (informational: the kernel tells them apart by
/// the name itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// A NIC or any port the kernel knows by its interface name.
    Interface,
    /// A port of a VALE software switch.
    Vale,
    /// The master (`{`) end of a netmap pipe.
    PipeMaster,
    /// The slave (`}`) end of a netmap pipe.
    PipeSlave,
}

/// A parsed port name: everything a `NETMAP_REQ_REGISTER` request needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The name given to the kernel in `nmreq_header.nr_name` (`eth0`, `vale0:p1`,
    /// `eth0{1`).
    pub kernel_name: String,
    /// Which rings to bind.
    pub mode: RingMode,
    /// The kind of port.
    pub kind: PortKind,
    /// Ask for exclusive access to the bound rings (`/x`).
    pub exclusive: bool,
}

/// Why a port name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad netmap port name `{}`: {} (expected e.g. netmap:eth0, netmap:eth0-2, netmap:eth0^, vale0:p1, netmap:eth0{{1)",
            self.name, self.reason
        )
    }
}

impl std::error::Error for NameError {}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.')
}

impl FromStr for PortSpec {
    type Err = NameError;

    fn from_str(name: &str) -> Result<PortSpec, NameError> {
        let err = |reason| NameError {
            name: name.to_string(),
            reason,
        };
        let (body, exclusive) = match name.split_once('/') {
            None => (name, false),
            Some((b, "x")) => (b, true),
            Some(_) => return Err(err("the only supported flag is /x (exclusive)")),
        };
        if body.contains('@') {
            return Err(err("@ options are not supported"));
        }
        // `netmap:` names an interface; `valeS:` a VALE port (S may be empty: `vale:p`).
        let (is_vale, prefix, rest) = if let Some(r) = body.strip_prefix("netmap:") {
            (false, "", r)
        } else if body.starts_with("vale") {
            let Some((sw, port)) = body.split_once(':') else {
                return Err(err("a VALE port is valeSWITCH:PORT"));
            };
            if !sw["vale".len()..].chars().all(is_ident_char) {
                return Err(err("bad character in the VALE switch name"));
            }
            (true, &body[..sw.len() + 1], port)
        } else {
            return Err(err("a port name starts with `netmap:` or `vale`"));
        };
        // The interface (or VALE port) name runs up to the first suffix character.
        let split = rest.find(['-', '^', '*', '{', '}']).unwrap_or(rest.len());
        let (ifname, suffix) = rest.split_at(split);
        if ifname.is_empty() {
            return Err(err("the interface name is empty"));
        }
        if !ifname.chars().all(is_ident_char) {
            return Err(err("bad character in the interface name"));
        }
        let ring_number = |digits: &str| -> Result<u16, NameError> {
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(err("a ring number is decimal digits"));
            }
            match digits.parse::<u16>() {
                Ok(n) if n <= MAX_RING_ID => Ok(n),
                _ => Err(err("ring numbers are 0..=4095")),
            }
        };
        let (mode, kind, kernel_suffix) = match suffix.chars().next() {
            None => (RingMode::AllNic, PortKind::Interface, ""),
            Some('-') => (
                RingMode::OneNic(ring_number(&suffix[1..])?),
                PortKind::Interface,
                "",
            ),
            Some('^') if suffix.len() == 1 => (RingMode::Host, PortKind::Interface, ""),
            Some('^') => return Err(err("single host rings (^N) are not supported, use ^")),
            Some('*') if suffix.len() == 1 => (RingMode::NicAndHost, PortKind::Interface, ""),
            Some('{') | Some('}') => {
                let id = &suffix[1..];
                if id.is_empty() || !id.chars().all(is_ident_char) {
                    return Err(err("a pipe id is letters, digits, `_` or `.`"));
                }
                let kind = if suffix.starts_with('{') {
                    PortKind::PipeMaster
                } else {
                    PortKind::PipeSlave
                };
                (RingMode::AllNic, kind, suffix)
            }
            Some(_) => return Err(err("unexpected characters after the ring suffix")),
        };
        if is_vale && matches!(mode, RingMode::Host | RingMode::NicAndHost) {
            return Err(err("VALE ports have no host rings"));
        }
        let kind = if is_vale && kind == PortKind::Interface {
            PortKind::Vale
        } else {
            kind
        };
        let kernel_name = format!("{prefix}{ifname}{kernel_suffix}");
        if kernel_name.len() >= REQ_IFNAMSIZ {
            return Err(err("the name is longer than netmap's 63 characters"));
        }
        Ok(PortSpec {
            kernel_name,
            mode,
            kind,
            exclusive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn interface_names_and_ring_suffixes() {
        let a = p("netmap:eth0");
        assert_eq!(a.kernel_name, "eth0");
        assert_eq!(
            (a.mode, a.kind, a.exclusive),
            (RingMode::AllNic, PortKind::Interface, false)
        );
        assert_eq!((a.mode.nr_mode(), a.mode.ring_id()), (1, 0));
        let b = p("netmap:eth0-2");
        assert_eq!(b.kernel_name, "eth0");
        assert_eq!(b.mode, RingMode::OneNic(2));
        assert_eq!((b.mode.nr_mode(), b.mode.ring_id()), (4, 2));
        assert_eq!(p("netmap:enp1s0f0^").mode, RingMode::Host);
        assert_eq!(p("netmap:enp1s0f0^").mode.nr_mode(), 2);
        assert_eq!(p("netmap:ix0*").mode, RingMode::NicAndHost);
        assert_eq!(p("netmap:ix0*").mode.nr_mode(), 3);
        assert!(p("netmap:eth0-4095/x").exclusive);
    }

    #[test]
    fn vale_and_pipes_keep_their_kernel_names() {
        let v = p("vale0:p1");
        assert_eq!(
            (v.kernel_name.as_str(), v.kind),
            ("vale0:p1", PortKind::Vale)
        );
        assert_eq!(v.mode, RingMode::AllNic);
        assert_eq!(p("vale:a").kernel_name, "vale:a");
        assert_eq!(p("vale0:p1-1").mode, RingMode::OneNic(1));
        let m = p("netmap:eth0{1");
        assert_eq!(
            (m.kernel_name.as_str(), m.kind),
            ("eth0{1", PortKind::PipeMaster)
        );
        let s = p("netmap:eth0}1");
        assert_eq!(
            (s.kernel_name.as_str(), s.kind),
            ("eth0}1", PortKind::PipeSlave)
        );
        assert_eq!(p("vale1:x{pp").kernel_name, "vale1:x{pp");
    }

    #[test]
    fn bad_names_are_clear_errors() {
        for (name, needle) in [
            ("eth0", "starts with"),
            ("netmap:", "empty"),
            ("netmap:-1", "empty"),
            ("netmap:eth0-", "decimal"),
            ("netmap:eth0-x", "decimal"),
            ("netmap:eth0-4096", "0..=4095"),
            ("netmap:eth0-99999999", "0..=4095"),
            ("netmap:eth0^1", "^N"),
            ("netmap:eth0*x", "unexpected"),
            ("netmap:eth0{", "pipe id"),
            ("netmap:eth 0", "bad character"),
            ("netmap:eth0/r", "/x"),
            ("netmap:eth0@conf:rings=4", "@ options"),
            ("vale0", "valeSWITCH:PORT"),
            ("vale0:p1^", "no host rings"),
            ("vale!:p", "switch name"),
        ] {
            let e = name.parse::<PortSpec>().unwrap_err();
            assert!(e.to_string().contains(needle), "{name}: {e}");
            assert!(e.to_string().contains(name), "{name}: {e}");
        }
        let long = format!("netmap:{}", "a".repeat(64));
        assert!(long.parse::<PortSpec>().unwrap_err().reason.contains("63"));
    }
}
