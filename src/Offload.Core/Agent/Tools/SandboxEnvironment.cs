using System.Collections;

namespace Offload.Agent.Tools;

/// <summary>
/// The environment the agent's shell commands get: an allow-list of the daemon's variables
/// (so API keys and tokens never reach a command, sandboxed or not), then a deny-list on top
/// in case an allowed name carries a secret.
/// </summary>
public static class SandboxEnvironment
{
    private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal)
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ",
        "XDG_CONFIG_HOME",
        "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL",
    };

    private static readonly string[] DeniedSuffixes = ["_KEY", "_TOKEN"];

    private static readonly string[] DeniedParts = ["SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "API_KEY", "APIKEY"];

    /// <summary>Whether a variable of this name may reach a command.</summary>
    public static bool Allows(string name)
    {
        var upper = name.ToUpperInvariant();
        if (DeniedSuffixes.Any(s => upper.EndsWith(s, StringComparison.Ordinal)) || DeniedParts.Any(p => upper.Contains(p, StringComparison.Ordinal)))
        {
            return false;
        }

        return Allowed.Contains(name) || name.StartsWith("LC_", StringComparison.Ordinal);
    }

    /// <summary>
    /// The daemon's environment filtered for commands. Under the sandbox <c>TMPDIR</c> is the
    /// private <c>/tmp</c> and caches go there too, since the home folder is read-only.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ForCommands(bool sandboxed, IDictionary? source = null)
    {
        source ??= Environment.GetEnvironmentVariables();
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in source)
        {
            if (entry.Key is string name && entry.Value is string value && Allows(name))
            {
                result[name] = value;
            }
        }

        result.TryAdd("PATH", "/usr/local/bin:/usr/bin:/bin");
        result.TryAdd("LANG", "C.UTF-8");
        if (sandboxed)
        {
            result["TMPDIR"] = "/tmp";
            result["XDG_CACHE_HOME"] = "/tmp/.cache";
        }

        return result;
    }
}
