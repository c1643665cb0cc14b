import Foundation
import Testing

/// paramiko (python3-paramiko) as a second, independent client
/// implementation: exec, stderr, signal, pty resize, SFTP.
@Suite(.serialized) struct ParamikoTests {
    let server = TestServer.shared

    static let client = """
        import sys, io, paramiko, time
        port, key, known_key, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.RejectPolicy())
        kind, blob = known_key.split()[:2]
        c.get_host_keys().add("[127.0.0.1]:%d" % port, kind, paramiko.Ed25519Key(data=paramiko.py3compat.decodebytes(blob.encode())))
        c.connect("127.0.0.1", port=port, username="tester", key_filename=key, look_for_keys=False, allow_agent=False)
        t = c.get_transport()

        # exec with separate stdout/stderr and an exit status
        ch = t.open_session(); ch.exec_command("echo out; echo err >&2; exit 7")
        out = ch.makefile().read(); err = ch.makefile_stderr().read(); st = ch.recv_exit_status()
        assert (out, err, st) == (b"out\\n", b"err\\n", 7), (out, err, st)

        # the "signal" request (RFC 4254 §6.9): TERM ends the program, reported by exit-signal
        ch = t.open_session(); ch.exec_command("echo started; sleep 30")
        assert ch.recv(100) == b"started\\n"
        m = paramiko.Message(); m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST); m.add_int(ch.remote_chanid)
        m.add_string("signal"); m.add_boolean(False); m.add_string("TERM")
        t._send_user_message(m)
        st = ch.recv_exit_status()
        assert st == -1, st  # paramiko reports exit-signal as -1

        # pty with a size, then window-change (sent before the newline that
        # lets the second stty run, so the order is fixed by the channel)
        ch = t.open_session(); ch.get_pty(term="xterm", width=91, height=17); ch.exec_command("stty size; read x; stty size")
        f = ch.makefile("rb")
        first = f.readline()
        ch.resize_pty(width=101, height=27); ch.send(b"\\n")
        rest = f.read().replace(b"\\r", b"")
        assert first.replace(b"\\r", b"") == b"17 91\\n" and rest.strip() == b"27 101", (first, rest)

        # channel data and right behind it an SSH_MSG_IGNORE (RFC 4253 §11.2):
        # the server sees more input queued when the data arrives and holds
        # it to write with what follows; no more data follows until the echo
        ch = t.open_session(); ch.exec_command("cat"); ch.settimeout(10)
        for n in [10000, 40000, 200000]:
            blob = bytes(range(256)) * (n // 256)
            ch.sendall(blob); t.send_ignore(30000)
            got = b""
            while len(got) < len(blob):
                got += ch.recv(1 << 20)
            assert got == blob, n
        ch.shutdown_write(); assert ch.recv_exit_status() == 0

        # SFTP
        s = c.open_sftp()
        s.mkdir(workdir + "/p")
        with s.open(workdir + "/p/f", "wb") as f:
            f.write(b"x" * 1000000)
        assert s.stat(workdir + "/p/f").st_size == 1000000
        s.rename(workdir + "/p/f", workdir + "/p/g")
        assert s.listdir(workdir + "/p") == ["g"]
        with s.open(workdir + "/p/g", "rb") as f:
            assert f.read() == b"x" * 1000000
        try:
            s.stat(workdir + "/p/none"); assert False
        except FileNotFoundError:
            pass
        try:
            s.rmdir(workdir + "/p"); assert False  # not empty
        except IOError:
            pass
        s.remove(workdir + "/p/g"); s.rmdir(workdir + "/p")
        assert s.normalize(".") == s.normalize("")
        print("ok")
        """

    @Test func paramikoClient() throws {
        let work = server.directory + "/paramiko-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let result = try python(
            "paramiko_client", Self.client,
            [String(server.port), server.directory + "/id_ed25519", server.server.hostPublicKey, work])
        #expect(result.text == "ok\n", "\(result.stderr)")
    }
}
