using System.Diagnostics;
using System.Globalization;
using Offload.Config;
using Offload.Workspace;

namespace Offload.Agent.Tools;

/// <summary>
/// Bubblewrap for the builtin agent's shell commands: the whole file system read-only, the
/// task's worktree and what a commit on its branch writes in the git dir writable, a private
/// <c>/tmp</c>, Offload's own files and the user's runtime sockets hidden, no network unless
/// allowed, its own pid namespace so killing bwrap kills everything inside. docs/sandbox.md
/// explains each choice.
/// </summary>
public static class Sandbox
{
    /// <summary>Set to another bwrap (or to a path that does not exist, to run without one).</summary>
    public const string BwrapVariable = "OFFLOAD_BWRAP";

    public const string InstallHint = "sudo apt-get install bubblewrap";

    private static readonly Lazy<SandboxProbe> Probed = new(() => Probe(Environment.GetEnvironmentVariable));

    /// <summary>The bwrap executable, when one is installed (it may still fail to work: see <see cref="IsAvailable"/>).</summary>
    public static string? BwrapPath => Probed.Value.Path;

    /// <summary>Whether bwrap exists and works here (checked once per process, with the flags commands run with).</summary>
    public static bool IsAvailable => Probed.Value.Works;

    /// <summary>Why <see cref="IsAvailable"/> is false, in words for the user; null when it is true.</summary>
    public static string? Problem => Probed.Value.Problem;

    /// <summary>Checks a bwrap afresh (for <c>offload doctor</c>, which runs in its own process anyway).</summary>
    public static SandboxProbe Probe(Func<string, string?> getEnv)
    {
        var path = FindBwrap(getEnv);
        if (path is null)
        {
            return new SandboxProbe(null, false, null, $"bubblewrap (bwrap) is not installed; shell commands run without a sandbox. Install it: {InstallHint}");
        }

        // With a user namespace where the kernel allows one; without, the capabilities are still dropped.
        var withUserNamespace = TryRun(path, [.. ProbeArguments, .. Confinement(userNamespace: true), "--", "/bin/true"]);
        if (withUserNamespace.Problem is null)
        {
            return new SandboxProbe(path, true, VersionOf(path), null, UserNamespace: true);
        }

        var without = TryRun(path, [.. ProbeArguments, .. Confinement(userNamespace: false), "--", "/bin/true"]);
        return without.Problem is null ? new SandboxProbe(path, true, VersionOf(path), null) : without;
    }

    /// <summary>The mounts of <see cref="Arguments"/> that every sandbox has, for the trial run.</summary>
    private static readonly string[] ProbeArguments =
        ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--size", "1048576", "--tmpfs", "/tmp", "--unshare-net"];

    /// <summary>
    /// What makes root in the sandbox no more than a plain user (docs/sandbox.md, "Capabilities"): no capabilities
    /// (so no mount, umount, nsenter, ptrace of the daemon, raw sockets), its own pid namespace and session, and, where the
    /// kernel allows, its own user namespace in which it cannot make another (a new one would hand the capabilities back
    /// inside it). bwrap always sets no_new_privs, so no setuid program gains anything either.
    /// </summary>
    private static IEnumerable<string> Confinement(bool userNamespace) =>
        [.. userNamespace ? (string[])["--unshare-user", "--disable-userns"] : [], "--unshare-pid", "--die-with-parent", "--new-session", "--cap-drop", "ALL"];

    private static SandboxProbe TryRun(string path, IEnumerable<string> arguments)
    {
        var probe = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            probe.ArgumentList.Add(argument);
        }

        try
        {
            using var process = Process.Start(probe)!;
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return new SandboxProbe(path, false, VersionOf(path), $"{path} did not finish a trial run within 10 s; shell commands run without a sandbox.");
            }

            return process.ExitCode == 0
                ? new SandboxProbe(path, true, null, null)
                : new SandboxProbe(path, false, VersionOf(path),
                    $"{path} is installed but cannot create a sandbox here ({stderr.Result.Trim()}); shell commands run without one. "
                    + "Unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone, or AppArmor's kernel.apparmor_restrict_unprivileged_userns).");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new SandboxProbe(path, false, null, $"{path} cannot be run ({e.Message}); shell commands run without a sandbox. Install it: {InstallHint}");
        }
    }

    /// <summary>
    /// The sandbox for one task's commands, or null when bwrap is not available. The task's git dir is the one Offload
    /// computed (<see cref="GitWorkspace.OpenTaskAsync"/>, which refuses a worktree whose git files changed), never what
    /// the worktree's <c>.git</c> says. Writable: what <c>git commit</c> on the task's branch writes, i.e. the worktree's
    /// git dir and the folder of the branch's ref (and reflog); objects go to a quarantine (<see cref="SandboxObjects"/>).
    /// Read-only: the rest of the repository's git dir (no deleting history, moving other branches, planting hooks or
    /// config) and the files that say where git's data is (<see cref="TaskGit.PointerFiles"/>).
    /// </summary>
    public static async Task<SandboxPolicy?> ForTaskAsync(
        string repoRoot, string worktree, string branch, string spillDir, SandboxSettings settings, CancellationToken cancellationToken = default)
    {
        if (!IsAvailable)
        {
            return null;
        }

        var git = await GitWorkspace.OpenTaskAsync(repoRoot, worktree, branch, cancellationToken);
        var common = git.CommonDir;
        var privateObjects = SandboxObjects.PrivateDir(git.GitDir);
        Directory.CreateDirectory(privateObjects);
        List<string> writable = [git.GitDir];
        foreach (var refDir in (string[])[Path.GetDirectoryName(Path.Combine(common, git.BranchRef))!, Path.GetDirectoryName(Path.Combine(common, "logs", git.BranchRef))!])
        {
            Directory.CreateDirectory(refDir);
            writable.Add(refDir);
        }

        var worktreeConfig = Path.Combine(git.GitDir, "config.worktree");
        if (git.PointerFiles.Contains(worktreeConfig) && !File.Exists(worktreeConfig))
        {
            File.WriteAllText(worktreeConfig, ""); // to be bound read-only: git reads it when the repository sets extensions.worktreeConfig
        }

        var paths = OffloadPaths.FromEnvironment();
        string[] hidden = [.. new[] { Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"), paths.RuntimeDir, paths.ConfigDir, paths.DataDir }
            .OfType<string>().Where(p => p.Length > 0 && Path.IsPathRooted(p)).Distinct()];
        var policy = new SandboxPolicy(git.Worktree, common, [.. writable.Distinct()], privateObjects, await ObjectFormatAsync(common, cancellationToken),
            spillDir, settings.Network, hidden)
        {
            GitPointerFiles = git.PointerFiles,
            Settings = settings,
        };
        await SandboxObjects.AdoptAsync(policy, cancellationToken); // what a command left when the daemon died mid-run
        return policy;
    }

    /// <summary>sha1, unless the repository's config names another format (then git is asked).</summary>
    private static async Task<string> ObjectFormatAsync(string commonDir, CancellationToken cancellationToken)
    {
        if (!File.ReadAllText(Path.Combine(commonDir, "config")).Contains("objectformat", StringComparison.OrdinalIgnoreCase))
        {
            return "sha1";
        }

        var format = await Git.OutputAsync(commonDir, ["rev-parse", "--show-object-format"], new Dictionary<string, string> { ["GIT_DIR"] = commonDir }, cancellationToken: cancellationToken);
        return format.Trim();
    }

    /// <summary>The bwrap arguments that come before <c>--</c> and the command; bind order matters (later binds cover earlier ones).</summary>
    /// <param name="allowRead">Credential paths the program needs on top of the user's <see cref="SandboxSettings.AllowRead"/>
    /// (Claude Code run in the sandbox reads its own <c>~/.claude/.credentials.json</c>).</param>
    public static IReadOnlyList<string> Arguments(SandboxPolicy policy, string? home, IReadOnlyList<string>? allowRead = null)
    {
        var args = new List<string> { "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc" };
        if (policy.Settings.Limits.TmpSizeMb > 0)
        {
            args.AddRange(["--size", (policy.Settings.Limits.TmpSizeMb * 1024L * 1024).ToString(CultureInfo.InvariantCulture)]); // /tmp is RAM
        }

        args.AddRange(["--tmpfs", "/tmp"]);
        if (!policy.Network && Directory.Exists("/run"))
        {
            // Services' Unix sockets live there (docker, containerd, dbus, /var/run is a link to it): a read-only mount
            // does not stop connect(), an empty folder in its place does. With the network on, resolv.conf may point in.
            args.AddRange(["--tmpfs", "/run"]);
        }

        if (home is { Length: > 0 } && Path.IsPathRooted(home) && IsUnder(home, "/tmp") && Directory.Exists(home))
        {
            args.AddRange(["--ro-bind", home, home]);
        }

        foreach (var hidden in policy.HiddenDirs.Where(Directory.Exists))
        {
            args.AddRange(["--tmpfs", hidden]);
        }

        args.AddRange(Credentials.Arguments(home, [.. policy.Settings.AllowRead, .. allowRead ?? []]));

        foreach (var socket in ContainerSockets.Where(File.Exists))
        {
            args.AddRange(["--ro-bind", "/dev/null", socket]); // a read-only mount does not stop connect(); a device in its place does
        }

        if (policy.GitCommonDir is { } git)
        {
            args.AddRange(["--ro-bind", git, git]); // again, in case it lies under /tmp or a hidden folder
            foreach (var dir in policy.GitWritableDirs.Where(Directory.Exists))
            {
                args.AddRange(["--bind", dir, dir]);
            }

            foreach (var path in new[] { Path.Combine(git, "hooks"), Path.Combine(git, "config"), Path.Combine(git, "objects") }.Where(Path.Exists))
            {
                args.AddRange(["--ro-bind", path, path]); // should a writable folder above contain them
            }

            if (policy.PrivateObjectDir is { } objects)
            {
                args.AddRange(["--setenv", "GIT_OBJECT_DIRECTORY", objects, "--setenv", "GIT_ALTERNATE_OBJECT_DIRECTORIES", Path.Combine(git, "objects")]);
            }
        }

        args.AddRange(["--bind", policy.Worktree, policy.Worktree]);
        foreach (var file in policy.GitPointerFiles.Where(File.Exists))
        {
            args.AddRange(["--ro-bind", file, file]); // over the writable worktree and git dir: what says where git's data is stays
        }

        args.AddRange(["--ro-bind-try", policy.SpillDir, policy.SpillDir]);
        if (!policy.Network)
        {
            args.Add("--unshare-net");
        }

        args.AddRange(Confinement(Probed.Value.UserNamespace));
        args.AddRange(["--chdir", policy.Worktree]);
        return args;
    }

    /// <summary>Daemons whose socket is as good as root to whoever can connect to it.</summary>
    private static readonly string[] ContainerSockets =
        ["/run/docker.sock", "/run/podman/podman.sock", "/run/containerd/containerd.sock", "/run/buildkit/buildkitd.sock"];

    private static string? FindBwrap(Func<string, string?> getEnv)
    {
        if (getEnv(BwrapVariable) is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : null;
        }

        return (getEnv("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(dir => Path.Combine(dir, "bwrap"))
            .FirstOrDefault(File.Exists);
    }

    private static string? VersionOf(string path)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(path, "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
            var output = process.StandardOutput.ReadToEnd().Trim();
            return process.WaitForExit(TimeSpan.FromSeconds(5)) && output.Length > 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static bool IsUnder(string path, string dir) =>
        path == dir || path.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal);
}

/// <summary>What was found out about bwrap on this machine.</summary>
/// <param name="UserNamespace">Whether commands get a user namespace of their own (<c>--unshare-user --disable-userns</c>).</param>
public sealed record SandboxProbe(string? Path, bool Works, string? Version, string? Problem, bool UserNamespace = false);

/// <summary>Where one task's commands may write and whether they may reach the network.</summary>
/// <param name="GitCommonDir">The repository's git dir, read-only; null when git could not tell.</param>
/// <param name="GitWritableDirs">The parts of it <c>git commit</c> in the worktree writes: the worktree's git dir, its branch's ref folder.</param>
/// <param name="PrivateObjectDir">Where git in the sandbox writes objects; <see cref="SandboxObjects"/> adopts them after each command.</param>
/// <param name="ObjectFormat">sha1 or sha256, to check adopted objects.</param>
/// <param name="HiddenDirs">Covered with an empty tmpfs: Offload's socket, config and data, and the user's runtime dir (ssh-agent, dbus).</param>
public sealed record SandboxPolicy(string Worktree, string? GitCommonDir, IReadOnlyList<string> GitWritableDirs, string? PrivateObjectDir, string ObjectFormat, string SpillDir, bool Network, IReadOnlyList<string> HiddenDirs)
{
    /// <summary>Bound read-only over the writable binds: the worktree's <c>.git</c> file, and <c>gitdir</c>, <c>commondir</c>, <c>config.worktree</c> in its git dir.</summary>
    public IReadOnlyList<string> GitPointerFiles { get; init; } = [];

    /// <summary>The user's <c>sandbox</c> settings: credentials opened on purpose, resource limits.</summary>
    public SandboxSettings Settings { get; init; } = new();
}

/// <summary>The <c>sandbox</c> section of Offload's config (setters, not init: the JSON source generator sets an absent init property to null).</summary>
public sealed record SandboxSettings
{
    /// <summary>Let sandboxed commands use the network (off by default).</summary>
    public bool Network { get; init; }

    /// <summary>Credential paths (<c>~/.aws</c>, <c>~/.ssh/known_hosts</c>) commands may read after all; <see cref="Credentials"/> hides the rest.</summary>
    public List<string> AllowRead { get; set; } = [];

    /// <summary>Processes, memory and disk for each command (<see cref="CommandLimits"/>).</summary>
    public SandboxLimits Limits { get; set; } = new();
}

/// <summary>The <c>sandbox.limits</c> section: what one task's command may use. 0 turns a limit off.</summary>
public sealed record SandboxLimits
{
    /// <summary>Processes and threads at once (a cgroup's <c>pids.max</c> counts threads, and a parallel build on many cores has thousands).</summary>
    public int MaxProcesses { get; set; } = 4096;

    /// <summary>Memory of all the command's processes together, its private <c>/tmp</c> included.</summary>
    public int MaxMemoryMb { get; set; } = 4096;

    /// <summary>What the worktree (and the task's git dir) may grow to while a command runs.</summary>
    public int MaxDiskMb { get; set; } = 10240;

    /// <summary>The size of the private <c>/tmp</c>, which lives in memory.</summary>
    public int TmpSizeMb { get; set; } = 1024;
}
