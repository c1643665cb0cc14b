import CLibSSH

/// The C entry points libssh calls for a channel. Each turns `userdata` back
/// into the `ChannelHandler` (unretained: the connection owns the handler and
/// removes these callbacks before it lets go of it) and forwards.
private func handler(_ userdata: UnsafeMutableRawPointer?) -> ChannelHandler {
    Unmanaged<ChannelHandler>.fromOpaque(userdata!).takeUnretainedValue()
}

private func text(_ p: UnsafePointer<CChar>?) -> String {
    p.map { String(cString: $0) } ?? ""
}

enum ChannelCallbacks {
    static func install(into cb: UnsafeMutablePointer<ssh_channel_callbacks_struct>) {
        cb.pointee.channel_data_function = { _, _, data, length, isStderr, userdata in
            let buffer = UnsafeRawBufferPointer(start: data, count: Int(length))
            return Int32(handler(userdata).receive(buffer, isStderr: isStderr != 0))
        }
        cb.pointee.channel_eof_function = { _, _, userdata in handler(userdata).receiveEOF() }
        cb.pointee.channel_close_function = { _, _, userdata in handler(userdata).clientClosed() }
        cb.pointee.channel_signal_function = { _, _, signal, userdata in
            handler(userdata).signalRequest(text(signal))
        }
        // pty-req is not handled here but in `Connection.handle(message:)`:
        // only the message carries the terminal modes.
        cb.pointee.channel_pty_window_change_function = { _, _, width, height, pxWidth, pxHeight, userdata in
            handler(userdata).windowChange(
                columns: width, rows: height, pixelWidth: pxWidth, pixelHeight: pxHeight) ? 0 : -1
        }
        cb.pointee.channel_shell_request_function = { _, _, userdata in
            handler(userdata).shellRequest() ? 0 : -1
        }
        cb.pointee.channel_exec_request_function = { _, _, command, userdata in
            handler(userdata).execRequest(text(command)) ? 0 : -1
        }
        cb.pointee.channel_subsystem_request_function = { _, _, name, userdata in
            handler(userdata).subsystemRequest(text(name)) ? 0 : -1
        }
        cb.pointee.channel_env_request_function = { _, _, name, value, userdata in
            handler(userdata).envRequest(name: text(name), value: text(value)) ? 0 : -1
        }
        cb.pointee.channel_auth_agent_req_function = { _, _, userdata in
            handler(userdata).agentForwardingRequest()
        }
        cb.pointee.channel_x11_req_function = { _, _, single, proto, cookie, screen, userdata in
            handler(userdata).x11Request(
                singleConnection: single != 0, protocol: text(proto), cookie: text(cookie), screen: screen)
        }
    }
}
