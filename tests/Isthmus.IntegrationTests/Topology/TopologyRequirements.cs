using Xunit;

namespace Isthmus.IntegrationTests.Topology;

/// <summary>Preconditions of the namespace tests. They fail the test (never skip it) with what to do.</summary>
public static class TopologyRequirements
{
    /// <summary>Fails unless running as root with ip, tc and setsid available.</summary>
    public static void EnsureRoot()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Fail(
                "the integration tests build network namespaces and must run as root (uid 0), " +
                $"but this process ({Environment.UserName}) is not root. Run ./test.sh as root.");
        }

        EnsureTools("ip", "tc", "setsid", "sysctl");
    }

    /// <summary>Fails unless every program is found (system directories, then PATH).</summary>
    public static void EnsureTools(params string[] programs)
    {
        ArgumentNullException.ThrowIfNull(programs);
        var missing = programs.Where(p => Shell.Which(p) is null).ToList();
        if (missing.Count > 0)
        {
            Assert.Fail($"required program(s) not found: {string.Join(", ", missing)}; run .ci/install-deps.sh (as root)");
        }
    }
}
