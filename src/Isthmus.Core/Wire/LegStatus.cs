namespace Isthmus.Core.Wire;

/// <summary>
/// The answer a hop gives to a leg header. It travels back hop by hop, so the program's blocking
/// connect gets the result of the final hop's real connect.
/// </summary>
public enum LegStatus : byte
{
    Ok = 0,
    Refused = 1,
    HostUnreachable = 2,
    NetworkUnreachable = 3,
    TimedOut = 4,
    AuthenticationFailed = 5,
    BadRequest = 6,
}

/// <summary>Maps leg statuses to the errno a program sees, and socket errors to statuses.</summary>
public static class LegStatusErrno
{
    public const int EAccess = 13;
    public const int EProto = 71;
    public const int ENetUnreach = 101;
    public const int ETimedOut = 110;
    public const int EConnRefused = 111;
    public const int EHostUnreach = 113;

    public static int ToErrno(LegStatus status) => status switch
    {
        LegStatus.Ok => 0,
        LegStatus.Refused => EConnRefused,
        LegStatus.HostUnreachable => EHostUnreach,
        LegStatus.NetworkUnreachable => ENetUnreach,
        LegStatus.TimedOut => ETimedOut,
        LegStatus.AuthenticationFailed => EAccess,
        _ => EProto,
    };

    public static LegStatus FromSocketError(System.Net.Sockets.SocketError error) => error switch
    {
        System.Net.Sockets.SocketError.ConnectionRefused => LegStatus.Refused,
        System.Net.Sockets.SocketError.TimedOut => LegStatus.TimedOut,
        System.Net.Sockets.SocketError.NetworkUnreachable => LegStatus.NetworkUnreachable,
        System.Net.Sockets.SocketError.NetworkDown => LegStatus.NetworkUnreachable,
        _ => LegStatus.HostUnreachable,
    };
}
