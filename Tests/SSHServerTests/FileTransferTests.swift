import Foundation
import Testing

/// scp (SFTP mode, OpenSSH ≥ 9), sftp -b and rsync over ssh against the
/// in-process SFTP server and exec.
@Suite(.serialized) struct FileTransferTests {
    let server = TestServer.shared

    private func scratch(_ name: String) throws -> String {
        let dir = server.directory + "/\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func scpUploadAndDownload() throws {
        let dir = try scratch("scp")
        try shell("head -c 3000000 /dev/urandom > \(dir)/src")
        let up = try run(["scp", "-F", server.config, "\(dir)/src", "tether-test:\(dir)/uploaded"])
        #expect(up.status == 0, "\(up.stderr)")
        let down = try run(["scp", "-F", server.config, "tether-test:\(dir)/uploaded", "\(dir)/downloaded"])
        #expect(down.status == 0, "\(down.stderr)")
        let sums = try shell("sha256sum < \(dir)/src; sha256sum < \(dir)/uploaded; sha256sum < \(dir)/downloaded").text
        let lines = sums.split(separator: "\n")
        #expect(lines.count == 3 && Set(lines).count == 1)
        // Recursive copy with modes and times kept (-rp).
        try shell("mkdir -p \(dir)/tree/a/b && echo one > \(dir)/tree/a/one && chmod 640 \(dir)/tree/a/one")
        let tree = try run(["scp", "-F", server.config, "-rp", "\(dir)/tree", "tether-test:\(dir)/tree-copy"])
        #expect(tree.status == 0, "\(tree.stderr)")
        let mode = try shell("stat -c %a \(dir)/tree-copy/a/one").text
        #expect(mode == "640\n")
        // A missing remote file is an error with the server's message.
        let missing = try run(["scp", "-F", server.config, "tether-test:\(dir)/nope", "\(dir)/x"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("No such file"))
    }

    @Test func sftpBatch() throws {
        let dir = try scratch("sftp")
        try "payload\n".write(toFile: dir + "/local.txt", atomically: true, encoding: .utf8)
        let batch = """
            mkdir \(dir)/remote
            cd \(dir)/remote
            put \(dir)/local.txt a.txt
            rename a.txt b.txt
            ls -l
            symlink b.txt link.txt
            get link.txt \(dir)/fetched.txt
            chmod 600 b.txt
            df -h .
            -rm missing-file
            rm link.txt
            rm b.txt
            cd ..
            rmdir \(dir)/remote
            """
        try batch.write(toFile: dir + "/batch", atomically: true, encoding: .utf8)
        let result = try run(["sftp", "-F", server.config, "-b", dir + "/batch", "tether-test"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text.contains("b.txt"))
        #expect(try String(contentsOfFile: dir + "/fetched.txt", encoding: .utf8) == "payload\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/remote"))
        #expect(result.stderr.contains("No such file"))
        // A failing command without "-" fails the batch with the status text.
        try "rmdir \(dir)/not-there\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
        let bad = try run(["sftp", "-F", server.config, "-b", dir + "/bad", "tether-test"])
        #expect(bad.status != 0)
    }

    @Test func rsyncTree() throws {
        let dir = try scratch("rsync")
        try shell(
            "mkdir -p \(dir)/src/a/b \(dir)/src/c && head -c 200000 /dev/urandom > \(dir)/src/a/b/bin"
                + " && echo text > \(dir)/src/c/t && ln -s ../c/t \(dir)/src/a/link && chmod 755 \(dir)/src/c/t")
        let ssh = "ssh -F \(server.config)"
        let result = try run(["rsync", "-a", "-e", ssh, "\(dir)/src/", "tether-test:\(dir)/dst/"])
        #expect(result.status == 0, "\(result.stderr)")
        let diff = try run(["diff", "-r", "\(dir)/src", "\(dir)/dst"])
        #expect(diff.status == 0, "\(diff.text)")
        let link = try shell("readlink \(dir)/dst/a/link").text
        #expect(link == "../c/t\n")
        // A second run transfers nothing new and still succeeds.
        let again = try run(["rsync", "-a", "--stats", "-e", ssh, "\(dir)/src/", "tether-test:\(dir)/dst/"])
        #expect(again.status == 0)
        #expect(again.text.contains("Number of regular files transferred: 0"))
    }
}
