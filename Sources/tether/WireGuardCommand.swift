import ArgumentParser
import Dispatch
import Mesh

#if canImport(Glibc)
    import Glibc
#endif

/// `tether wireguard <interface>`: a userspace WireGuard interface on a TUN
/// device, configured like wireguard-go's with `wg set`/`wg show` through
/// the UAPI socket and with `ip` for addresses and routes. Runs in the
/// foreground until SIGINT or SIGTERM.
struct WireGuardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wireguard",
        abstract: "Run a WireGuard interface on a TUN device (configure it with `wg` and `ip`).")

    @Argument(help: "Name of the TUN interface to create, e.g. wg0.")
    var interface: String

    @Option(help: "UDP port to listen on (0 = any; `wg set … listen-port` can change it).")
    var listenPort: UInt16 = 0

    @Option(help: "Tunnel MTU, used to bound padding.")
    var mtu: Int = 1420

    func run() throws {
        // Stop on SIGINT/SIGTERM. The root command is async, so this runs on a
        // pool thread and a per-thread signal mask would not cover the others;
        // ignoring the default action and watching with dispatch sources works
        // whichever thread the kernel picks.
        let stop = DispatchSemaphore(value: 0)
        let watchers = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        defer { watchers.forEach { $0.cancel() } }

        let tun: TUNDevice
        do {
            tun = try TUNDevice(name: interface, mtu: mtu)
        } catch {
            throw ValidationError("\(error)")
        }
        let device = try WireGuardDevice(end: tun, listenPort: listenPort)
        let uapi = try UAPIServer(device: device, interfaceName: tun.name)
        device.start()
        print("tether wireguard: \(tun.name) up, UDP port \(device.listenPort), UAPI \(uapi.path)")
        fflush(nil)

        stop.wait()
        uapi.close()
        device.stop()
        let drops = device.drops.nonzero.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
        print("tether wireguard: \(tun.name) stopped" + (drops.isEmpty ? "" : "; dropped \(drops)"))
    }
}
