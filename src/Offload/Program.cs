using System.CommandLine;
using Offload.Cli;
using Offload.Cli.Commands;

var root = new RootCommand("""
    Offload runs coding agents in the background, each in its own git worktree and branch.

      offload run "fix the flaky auth test"     hand off a task; returns at once
      offload ls                                what is running, what finished
      offload logs 1 -f                         follow a task live
      offload show 1 · offload diff 1           review its summary and its changes

    Try it offline: offload run --model sim:demo "look around"
    """)
{
    RunCommand.Create(),
    ListCommand.Create(),
    ShowCommand.Create(),
    LogsCommand.Create(),
    DiffCommand.Create(),
    CompareCommand.Create(),
    StatsCommand.Create(),
    UiCommand.Create(),
    WaitCommand.Create(),
    CancelCommand.Create(),
    ApproveCommand.Create(),
    DenyCommand.Create(),
    MergeCommand.Create(),
    ApplyCommand.Create(),
    DiscardCommand.Create(),
    GcCommand.Create(),
    ReplyCommand.Create(),
    RetryCommand.Create(),
    CheckpointsCommand.Create(),
    RewindCommand.Create(),
    DaemonCommand.Create(),
    DoctorCommand.Create(),
    SimCommand.Create(),
    McpCommand.Create(),
    ConfigCommand.Create(),
    CompletionCommand.Create(),
    HelpCommand.Create(),
    CompletionCommand.CreateComplete(),
};

if (args.Length == 0)
{
    args = ["--help"]; // `offload` alone: what it is and its commands
}

var parse = root.Parse(args);
if (Usage.IsRefused(parse))
{
    return Usage.Refuse(parse, Console.Error); // every command's usage errors: exit 2, what was wrong, its synopsis
}

try
{
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (CliException e)
{
    Console.Error.WriteLine($"offload: {e.Message}");
    if (e.Hint is not null)
    {
        Console.Error.WriteLine($"  next: {e.Hint}");
    }

    return e.ExitCode;
}
catch (OperationCanceledException)
{
    return ExitCodes.Interrupted;
}
catch (Exception e)
{
    // A bug or something nobody foresaw: the message, not a stack trace, and the documented code for it.
    Console.Error.WriteLine($"offload: unexpected error: {e.Message}");
    Console.Error.WriteLine("  next: run the command again; if it happens again, `offload doctor` checks the set-up and the daemon's log says more");
    return ExitCodes.Error;
}
