import CLibSSH
import Glibc

/// A detached POSIX thread running one closure. Each SSH connection runs on
/// its own thread with its own libssh session and poll loop, so a stuck
/// client can only ever stall itself.
final class PThread: @unchecked Sendable {
    private let body: () -> Void

    init(_ body: @escaping () -> Void) { self.body = body }

    func start() {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        // SFTP and key exchange use some stack; 1 MiB is plenty and keeps
        // hundreds of connections cheap.
        pthread_attr_setstacksize(&attributes, 1 << 20)
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, &attributes,
            { raw in
                let me = Unmanaged<PThread>.fromOpaque(raw!).takeRetainedValue()
                me.body()
                return nil
            }, context)
        if rc != 0 {
            Unmanaged<PThread>.fromOpaque(context).release()
            body()  // no thread could be made: run here rather than drop the work
        }
    }
}
