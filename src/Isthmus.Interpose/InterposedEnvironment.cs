using System.Collections;
using System.Net.Sockets;
using Isthmus.Core;

namespace Isthmus.Interpose;

/// <summary>Builds the environment a program runs with under the preload shim (see docs/ARCHITECTURE.md).</summary>
public static class InterposedEnvironment
{
    public const string ShimFileName = "libisthmus_preload.so";

    public static string ShimPath()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "native", ShimFileName);
        return File.Exists(path) ? path
            : throw new UserException($"the preload shim is missing ({path}); rebuild Isthmus with 'dotnet build'", ProgramLauncher.ExitCannotRun);
    }

    /// <summary>Finds the running agent of <paramref name="node"/> on this host, or explains how to start one.</summary>
    public static AgentInfo FindAgent(string node)
    {
        var dir = RuntimeDirectory.Resolve();
        var infoPath = RuntimeDirectory.InfoPath(dir, node);
        if (!File.Exists(infoPath))
        {
            throw new UserException($"no node agent named '{node}' runs on this host (looked in {dir}); start one with 'isthmus node DIR --site SITE --name {node}'", ProgramLauncher.ExitCannotRun);
        }

        var info = AgentInfo.Read(infoPath);
        using var probe = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(info.SocketPath));
        }
        catch (SocketException)
        {
            throw new UserException($"the node agent '{node}' is not running any more ({info.SocketPath} does not answer); start it again with 'isthmus node'", ProgramLauncher.ExitCannotRun);
        }

        return info;
    }

    /// <summary>
    /// LD_PRELOAD with <paramref name="shimPath"/> first and the other libraries kept, but no other copy of the
    /// shim: an environment that already carries one (a Slurm job submitted from the login node, whose
    /// TaskProlog then adds this node's shim from the site's copy of Isthmus) would load both, and each would
    /// interpose the other's calls (seen: srun inside a personal job failing with ENOTCONN).
    /// </summary>
    public static string PreloadList(string shimPath, string? existing)
    {
        // ld.so separates LD_PRELOAD entries by colons or spaces.
        var others = (existing ?? "").Split([':', ' '], StringSplitOptions.RemoveEmptyEntries)
            .Where(entry => Path.GetFileName(entry) != ShimFileName);
        return string.Join(':', [shimPath, .. others]);
    }

    /// <summary>The program's environment; <paramref name="shimPath"/> null (seccomp mode) leaves LD_PRELOAD as it is.</summary>
    public static Dictionary<string, string> Build(AgentInfo agent, string? shimPath, bool debug)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            env[(string)entry.Key] = (string?)entry.Value ?? "";
        }

        if (shimPath is not null)
        {
            env["LD_PRELOAD"] = PreloadList(shimPath, env.GetValueOrDefault("LD_PRELOAD"));
        }

        env["ISTHMUS_AGENT_SOCKET"] = agent.SocketPath;
        env["ISTHMUS_VIP"] = agent.Vip;
        env["ISTHMUS_NETWORK"] = agent.Network;
        env["ISTHMUS_IMAGE"] = agent.Image;
        env["ISTHMUS_DATA"] = agent.DataEndpoint;
        env["ISTHMUS_NODE"] = agent.Name;
        env["ISTHMUS_CLUSTER"] = agent.Cluster;
        if (agent.Direct)
        {
            env["ISTHMUS_DIRECT"] = "1";
        }
        else
        {
            env.Remove("ISTHMUS_DIRECT");
        }

        if (agent.NodeHostname)
        {
            env["ISTHMUS_HOSTNAME"] = agent.Name;
        }
        else
        {
            env.Remove("ISTHMUS_HOSTNAME");
        }
        if (debug)
        {
            env["ISTHMUS_DEBUG"] = "1";
        }

        return env;
    }
}
