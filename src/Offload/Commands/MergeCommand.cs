using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class MergeCommand
{
    public static Command Create()
    {
        var id = Common.TaskOrGroupArgument("The task's number, or a best-of-N group (g3) to merge its pick");
        var noSquash = new Option<bool>("--no-squash") { Description = "Make a merge commit with both parents instead of one squashed commit" };
        var json = Common.JsonOption();
        var command = new Command("merge",
            "Bring the task's branch into your current branch as one squashed commit (title and summary as its message); refuses, changing nothing, " +
            "on conflicts. For a group (gN), the group's pick: its check passed, then the smallest cost, then the smallest diff")
        {
            id, noSquash, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var target = parse.GetValue(id);
            var taskId = target.Id;
            GroupInfo? group = null;
            if (target.IsGroup)
            {
                group = await client.GetAsync<GroupInfo>($"v1/groups/{target.Id}", ct);
                if (!group.Done)
                {
                    throw new CliException(ExitCodes.Conflict,
                        $"group {target} is still running: {group.Tasks.Count(t => t.Status.IsFinal())} of {group.Tasks.Count} tasks have ended, so it has no pick yet; nothing was merged",
                        $"`offload wait {target}`, then merge again; or merge one task by hand: `offload merge ID`");
                }

                taskId = group.Pick ?? throw new CliException(ExitCodes.Conflict, $"group {target} has no pick: {group.PickReason}; nothing was merged",
                    $"`offload compare {target}` shows how each did; merge one by hand with `offload merge ID`, or retry one");
            }

            var merged = await client.PostAsync<MergeResponse>(
                $"v1/tasks/{taskId}/merge", new MergeRequest(Squash: !parse.GetValue(noSquash)), ct);
            if (group is not null && !parse.GetValue(json))
            {
                Console.Out.WriteLine($"group g{group.Id}: its pick is task {taskId} ({group.PickReason})");
            }

            if (parse.GetValue(json))
            {
                Output.Json(merged);
            }
            else if (merged.Commit is null)
            {
                Console.Out.WriteLine($"task {merged.Id}: nothing to merge, {merged.Into} already has its changes");
            }
            else
            {
                Console.Out.WriteLine($"merged task {merged.Id} into {merged.Into} as {merged.Commit[..10]} ({merged.Mode}) · {Files(merged.Files)}");
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    internal static string Files(IReadOnlyList<string> files) =>
        files.Count switch
        {
            0 => "no files",
            <= 5 => $"{files.Count} file{(files.Count == 1 ? "" : "s")}: {string.Join(", ", files)}",
            _ => $"{files.Count} files: {string.Join(", ", files.Take(5))}, …",
        };
}
