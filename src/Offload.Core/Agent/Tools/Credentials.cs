namespace Offload.Agent.Tools;

/// <summary>
/// Where credentials live, hidden from sandboxed commands: a command's output goes to the model provider and
/// into the journal, so <c>cat ~/.ssh/id_ed25519</c> must find nothing. A folder gets an empty read-only tmpfs,
/// a file <c>/dev/null</c> (reading it fails); only paths that exist are covered. <see cref="SandboxSettings.AllowRead"/>
/// (the user's config only) opens one of them, or a path inside one, on purpose.
/// </summary>
public static class Credentials
{
    /// <summary>Relative to the home folder.</summary>
    public static readonly IReadOnlyList<string> InHome =
    [
        ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".config/gh", ".config/hub", ".kube",
        ".netrc", ".git-credentials", ".config/git/credentials", ".docker/config.json",
        ".local/share/keyrings", ".password-store", ".pypirc", ".cargo/credentials", ".cargo/credentials.toml",
        ".claude/.credentials.json",
    ];

    /// <summary>Readable by root, who owns them, even without capabilities: a daemon running as root must not show them.</summary>
    private static readonly string[] System = ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"];

    /// <summary>The bwrap arguments that hide what exists of <see cref="InHome"/> and the system's secrets, then open <paramref name="allowRead"/>.</summary>
    public static IEnumerable<string> Arguments(string? home, IReadOnlyList<string> allowRead)
    {
        var allowed = allowRead.Select(p => Expand(p, home)).OfType<string>().ToList();
        var paths = (home is { Length: > 0 } && Path.IsPathRooted(home) ? InHome.Select(p => Path.Combine(home, p)) : [])
            .Concat(System)
            .Concat(Directory.Exists("/etc/ssh") ? Directory.EnumerateFiles("/etc/ssh", "ssh_host_*_key") : []);
        foreach (var path in paths)
        {
            if (allowed.Any(a => IsUnder(path, a)))
            {
                continue;
            }

            if (Directory.Exists(path))
            {
                yield return "--tmpfs";
                yield return path;
                foreach (var opened in allowed.Where(a => IsUnder(a, path) && Path.Exists(a)))
                {
                    yield return "--ro-bind";
                    yield return opened;
                    yield return opened;
                }

                yield return "--remount-ro";
                yield return path;
            }
            else if (File.Exists(path))
            {
                yield return "--ro-bind";
                yield return "/dev/null";
                yield return path;
            }
        }
    }

    /// <summary>An absolute path, or <c>~/…</c> in the home folder; anything else (relative, empty) is ignored.</summary>
    private static string? Expand(string path, string? home)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            return home is { Length: > 0 } ? Path.TrimEndingDirectorySeparator(Path.GetFullPath(home + path[1..])) : null;
        }

        return Path.IsPathRooted(path) ? Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)) : null;
    }

    private static bool IsUnder(string path, string dir) =>
        path == dir || path.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal);
}
