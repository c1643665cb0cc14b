import Glibc

/// The encoded terminal modes of a `pty-req` (RFC 4254 §6.2, §8; RFC 8160
/// adds IUTF8), applied to the new pty's termios so the remote terminal
/// behaves like the client's own (erase key, ^C, echo, output CR/LF).
///
///     modes    = *( opcode:u8 argument:u32 ) TTY_OP_END:u8
///     opcode   1…159: argument is uint32 (big-endian)
///              0 (TTY_OP_END) ends the list
///              160…255: undefined, and "SHOULD stop parsing" (§8), since
///              their argument length is unknown
///
/// Parsing never traps: a truncated list keeps what came before it, an
/// unknown opcode below 160 is skipped (its argument is still 4 bytes), and
/// anything the kernel has no flag for is ignored, as sshd does.
package struct TerminalModes: Equatable {
    /// (opcode, argument) pairs in the order the client sent them.
    package private(set) var entries: [(opcode: UInt8, argument: UInt32)] = []

    package static func == (a: TerminalModes, b: TerminalModes) -> Bool {
        a.entries.elementsEqual(b.entries) { $0.opcode == $1.opcode && $0.argument == $1.argument }
    }

    package init(encoded bytes: some Collection<UInt8>) {
        var cursor = bytes.startIndex
        while cursor != bytes.endIndex {
            let opcode = bytes[cursor]
            cursor = bytes.index(after: cursor)
            guard opcode != Opcode.end, opcode < Opcode.firstUndefined else { return }
            var argument: UInt32 = 0
            for _ in 0..<4 {
                guard cursor != bytes.endIndex else { return }
                argument = argument << 8 | UInt32(bytes[cursor])
                cursor = bytes.index(after: cursor)
            }
            entries.append((opcode, argument))
        }
    }

    /// Opcodes of RFC 4254 §8 and RFC 8160 (IUTF8).
    package enum Opcode {
        package static let end: UInt8 = 0
        package static let firstUndefined: UInt8 = 160
        package static let inputSpeed: UInt8 = 128
        package static let outputSpeed: UInt8 = 129
    }

    /// Special characters: opcode → index into `c_cc`. VDSUSP, VSTATUS and
    /// VFLUSH have no Linux equivalent.
    private static let characters: [UInt8: Int32] = [
        1: VINTR, 2: VQUIT, 3: VERASE, 4: VKILL, 5: VEOF, 6: VEOL, 7: VEOL2, 8: VSTART, 9: VSTOP, 10: VSUSP,
        12: VREPRINT, 13: VWERASE, 14: VLNEXT, 16: VSWTC, 18: VDISCARD,
    ]

    private enum Field { case input, local, output, control }

    /// Boolean flags: opcode → the termios field and bit.
    private static let flags: [UInt8: (Field, UInt32)] = [
        30: (.input, UInt32(IGNPAR)), 31: (.input, UInt32(PARMRK)), 32: (.input, UInt32(INPCK)),
        33: (.input, UInt32(ISTRIP)), 34: (.input, UInt32(INLCR)), 35: (.input, UInt32(IGNCR)),
        36: (.input, UInt32(ICRNL)), 37: (.input, UInt32(IUCLC)), 38: (.input, UInt32(IXON)),
        39: (.input, UInt32(IXANY)), 40: (.input, UInt32(IXOFF)), 41: (.input, UInt32(IMAXBEL)),
        42: (.input, UInt32(IUTF8)),
        50: (.local, UInt32(ISIG)), 51: (.local, UInt32(ICANON)), 52: (.local, UInt32(XCASE)),
        53: (.local, UInt32(ECHO)), 54: (.local, UInt32(ECHOE)), 55: (.local, UInt32(ECHOK)),
        56: (.local, UInt32(ECHONL)), 57: (.local, UInt32(NOFLSH)), 58: (.local, UInt32(TOSTOP)),
        59: (.local, UInt32(IEXTEN)), 60: (.local, UInt32(ECHOCTL)), 61: (.local, UInt32(ECHOKE)),
        62: (.local, UInt32(PENDIN)),
        70: (.output, UInt32(OPOST)), 71: (.output, UInt32(OLCUC)), 72: (.output, UInt32(ONLCR)),
        73: (.output, UInt32(OCRNL)), 74: (.output, UInt32(ONOCR)), 75: (.output, UInt32(ONLRET)),
        92: (.control, UInt32(PARENB)), 93: (.control, UInt32(PARODD)),
    ]

    /// Applies the modes on top of `settings`. The client encodes a disabled
    /// special character as 255 (OpenSSH's `_POSIX_VDISABLE` on the wire);
    /// Linux disables with 0.
    package func apply(to settings: inout termios) {
        for (opcode, argument) in entries {
            if let index = Self.characters[opcode] {
                let value: UInt8 = argument == 255 ? 0 : UInt8(truncatingIfNeeded: argument)
                withUnsafeMutableBytes(of: &settings.c_cc) { $0[Int(index)] = value }
            } else if let (field, bit) = Self.flags[opcode] {
                let on = argument != 0
                switch field {
                case .input: settings.c_iflag = on ? settings.c_iflag | bit : settings.c_iflag & ~bit
                case .local: settings.c_lflag = on ? settings.c_lflag | bit : settings.c_lflag & ~bit
                case .output: settings.c_oflag = on ? settings.c_oflag | bit : settings.c_oflag & ~bit
                case .control: settings.c_cflag = on ? settings.c_cflag | bit : settings.c_cflag & ~bit
                }
            } else if opcode == 90 || opcode == 91, argument != 0 {
                // CS7 / CS8: a character size, not a single bit.
                settings.c_cflag = settings.c_cflag & ~UInt32(CSIZE) | UInt32(opcode == 90 ? CS7 : CS8)
            } else if opcode == Opcode.inputSpeed || opcode == Opcode.outputSpeed, let speed = Self.baud(argument) {
                if opcode == Opcode.inputSpeed {
                    cfsetispeed(&settings, speed)
                } else {
                    cfsetospeed(&settings, speed)
                }
            }
        }
    }

    /// Bits per second → the termios speed constant (only exact matches).
    private static func baud(_ bitsPerSecond: UInt32) -> speed_t? {
        let table: [UInt32: Int32] = [
            9600: B9600, 19200: B19200, 38400: B38400, 57600: B57600, 115200: B115200, 230400: B230400,
            460800: B460800, 921600: B921600,
        ]
        return table[bitsPerSecond].map { speed_t($0) }
    }
}
