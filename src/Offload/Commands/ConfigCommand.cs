using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Offload.Config;
using Offload.Protocol;
using Offload.Workspace;

namespace Offload.Cli.Commands;

/// <summary>
/// <c>offload config get|set|unset|path</c>: one setting at a time, by its dotted name, in your config or (<c>--repo</c>)
/// the repository's <c>.offload/config.json</c>. A running daemon takes the change at once (docs/config.md).
/// </summary>
public static class ConfigCommand
{
    public static Command Create()
    {
        var command = new Command("config",
            "Read and change settings by name (limits.maxTurns, maxParallel, notifications.webhookUrl…); a running daemon applies a change at once. " +
            "`offload help config` lists them")
        {
            Get(), Set(), Unset(), PathCommand(),
        };
        return command;
    }

    private static Option<bool> RepoOption() => new("--repo")
    {
        Description = "The repository's .offload/config.json (for limits, permissions, check, checkTries, setup, setupNetwork) instead of your own config",
    };

    private static Command Get()
    {
        var key = new Argument<string?>("key") { Description = "The setting, e.g. limits.maxTurns; none: every setting", Arity = ArgumentArity.ZeroOrOne };
        var repo = RepoOption();
        var command = new Command("get", "Print a setting's value as it applies (defaults included), as JSON; with --repo, as it applies in this repository") { key, repo };
        command.SetAction(async (parse, ct) =>
        {
            var paths = OffloadPaths.FromEnvironment();
            var config = Load(paths.ConfigFile);
            if (parse.GetValue(repo))
            {
                config = Load(Path.Combine(await RepositoryAsync(ct), ".offload", "config.json"), repoOf: config);
            }

            JsonNode? value;
            try
            {
                value = parse.GetValue(key) is { } name
                    ? ConfigEditor.Get(config, name)
                    : JsonSerializer.SerializeToNode(config, OffloadJson.Info<OffloadConfig>(OffloadJson.Indented));
            }
            catch (ConfigKeyException e)
            {
                throw new CliException(ExitCodes.BadInput, e.Message, "`offload help config` lists every setting");
            }

            Console.Out.WriteLine(value is null ? "null" : value.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Set()
    {
        var key = new Argument<string>("key") { Description = "The setting, e.g. limits.maxTurns" };
        var value = new Argument<string>("value") { Description = "JSON (8, true, [\"npm ci\"], {…}) or, else, text" };
        var repo = RepoOption();
        var command = new Command("set", "Change a setting in the file (nothing is written unless the whole file still loads); a running daemon applies it at once")
        {
            key, value, repo,
        };
        command.SetAction(async (parse, ct) => await ChangeAsync(parse.GetValue(key)!, parse.GetValue(value), parse.GetValue(repo), ct));
        return command;
    }

    private static Command Unset()
    {
        var key = new Argument<string>("key") { Description = "The setting, e.g. limits.maxTurns" };
        var repo = RepoOption();
        var command = new Command("unset", "Remove a setting from the file: its default applies again") { key, repo };
        command.SetAction(async (parse, ct) => await ChangeAsync(parse.GetValue(key)!, null, parse.GetValue(repo), ct));
        return command;
    }

    private static Command PathCommand()
    {
        var repo = RepoOption();
        var command = new Command("path", "Print the config file's path (it need not exist yet)") { repo };
        command.SetAction(async (parse, ct) =>
        {
            Console.Out.WriteLine(parse.GetValue(repo)
                ? Path.Combine(await RepositoryAsync(ct), ".offload", "config.json")
                : OffloadPaths.FromEnvironment().ConfigFile);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<int> ChangeAsync(string key, string? value, bool inRepository, CancellationToken ct)
    {
        var paths = OffloadPaths.FromEnvironment();
        var file = inRepository ? Path.Combine(await RepositoryAsync(ct), ".offload", "config.json") : paths.ConfigFile;
        JsonNode? written;
        try
        {
            var names = ConfigEditor.Resolve(key);
            if (inRepository && !ConfigEditor.RepositoryKeys.Contains(names[0]))
            {
                throw new CliException(ExitCodes.BadInput,
                    $"{string.Join('.', names)} is read from your own config only, never a repository's (a repository may set {string.Join(", ", ConfigEditor.RepositoryKeys)})",
                    $"offload config {(value is null ? "unset" : "set")} {key}{(value is null ? "" : " …")} without --repo");
            }

            written = ConfigEditor.Set(file, key, value);
        }
        catch (ConfigKeyException e)
        {
            throw new CliException(ExitCodes.BadInput, e.Message, "`offload help config` lists every setting; nothing was changed");
        }
        catch (ConfigException e)
        {
            throw new CliException(ExitCodes.BadInput, e.Message, $"{(value is null ? "" : "give another value, or ")}fix {e.Path}; nothing was changed");
        }

        Console.Out.WriteLine(value is null ? $"{key} removed from {file}" : $"{key} = {written!.ToJsonString()} in {file}");
        if (inRepository)
        {
            Console.Out.WriteLine("new tasks of this repository use it");
            return ExitCodes.Ok;
        }

        // A daemon that runs takes it now (it also watches the file, for edits by hand); one that does not, at its start.
        using var client = new DaemonClient(paths);
        if (await client.TryStatusAsync(ct) is null)
        {
            return ExitCodes.Ok;
        }

        var reload = await client.PostAsync<ConfigReload>("v1/config/reload", null, ct);
        if (reload.Problem is { } problem)
        {
            throw new CliException(ExitCodes.Error, $"the daemon did not take it: {problem}", $"fix {file}; the daemon goes on with the settings it had");
        }

        Console.Out.WriteLine(reload.NeedsRestart.Count == 0
            ? "the daemon applies it now"
            : $"the daemon applies it now, except {string.Join(", ", reload.NeedsRestart)}: that waits for `offload daemon stop` (the next command starts it again)");
        return ExitCodes.Ok;
    }

    private static OffloadConfig Load(string path, OffloadConfig? repoOf = null)
    {
        try
        {
            return repoOf is null ? OffloadConfig.Load(path) : repoOf.WithRepository(Path.GetDirectoryName(Path.GetDirectoryName(path)!)!);
        }
        catch (ConfigException e)
        {
            throw new CliException(ExitCodes.BadInput, e.Message, e.Hint);
        }
    }

    private static async Task<string> RepositoryAsync(CancellationToken ct)
    {
        var top = await Git.RunAsync(Environment.CurrentDirectory, ["rev-parse", "--show-toplevel"], cancellationToken: ct);
        return top.Ok
            ? top.Stdout.Trim()
            : throw new CliException(ExitCodes.Repository, $"{Environment.CurrentDirectory} is not inside a git repository, so --repo names no repository", "cd into the repository, or leave out --repo");
    }
}
