using System.CommandLine;
using System.Globalization;
using Offload.Config;

namespace Offload.Cli.Commands;

/// <summary>Options and plumbing shared by the commands.</summary>
public static class Common
{
    public static Option<bool> JsonOption() => new("--json") { Description = "Print JSON for scripts instead of text" };

    public static Argument<long> TaskIdArgument() => new("id") { Description = "The task's number (see `offload ls`)" };

    /// <summary>Runs a command's body with a connected client, turning errors into a message and an exit code.</summary>
    public static async Task<int> WithClientAsync(Func<DaemonClient, Task<int>> body, bool ensureDaemon = true, CancellationToken cancellationToken = default)
    {
        using var client = new DaemonClient(OffloadPaths.FromEnvironment());
        if (ensureDaemon)
        {
            await client.EnsureDaemonAsync(cancellationToken);
        }

        return await body(client);
    }

    public static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);
}
