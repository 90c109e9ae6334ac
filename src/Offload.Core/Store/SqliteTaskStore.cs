using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Offload.Protocol;

namespace Offload.Store;

/// <summary>
/// The SQLite store: WAL, <c>synchronous=FULL</c>, forward-only numbered migrations.
/// All writes go through one connection under a lock (SQLite has one writer anyway),
/// so appends never wait on a busy file; reads use pooled connections.
/// </summary>
public sealed class SqliteTaskStore : ITaskStore
{
    private readonly string _connectionString;
    private readonly SqliteConnection _writer;
    private readonly Lock _pendingGate = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _writerThread;
    private List<PendingWrite> _pending = []; // under _pendingGate, as are the three flags
    private bool _writing; // a caller or the writer thread is making a batch
    private bool _threadWrites; // ... and it is the writer thread
    private bool _stopping;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);
    private readonly string _folder; // where the database is: the place a full disk is reported at

    private SqliteTaskStore(string connectionString, SqliteConnection writer, TimeProvider time, string folder)
    {
        _connectionString = connectionString;
        _folder = folder;
        _writer = writer;
        _time = time;
        _writerThread = new Thread(WriteLoop) { IsBackground = true, Name = "offload store writer" };
        _writerThread.Start();
    }

    /// <summary>Applied to every event before it is stored or published: the daemon redacts secrets here (<see cref="Redaction.SecretRedactor"/>).</summary>
    public Func<AgentEvent, AgentEvent>? BeforeAppend { get; set; }

    public static SqliteTaskStore Open(string path, TimeProvider? time = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        CheckHeader(path);
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        var writer = new SqliteConnection(connectionString);
        try
        {
            writer.Open();
            Exec(writer, "PRAGMA busy_timeout=30000;");
            Migrate(writer, path);
        }
        catch (StoreUnusableException)
        {
            writer.Dispose();
            throw;
        }
        catch (SqliteException e) when (DiskFullException.Find(e, Path.GetDirectoryName(Path.GetFullPath(path))!) is { } full)
        {
            writer.Dispose();
            throw full; // the database is fine: it needs room to open
        }
        catch (SqliteException e)
        {
            writer.Dispose();
            throw new StoreUnusableException(
                $"the database at {path} cannot be opened ({e.Message}). It was left untouched. " +
                "Move it aside (or set OFFLOAD_HOME to another folder) and start again.");
        }

        return new SqliteTaskStore(connectionString, writer, time ?? TimeProvider.System, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Refuses a file that is not SQLite at all before SQLite gets a chance to touch it.</summary>
    private static void CheckHeader(string path)
    {
        if (!File.Exists(path) || new FileInfo(path).Length == 0)
        {
            return;
        }

        Span<byte> header = stackalloc byte[16];
        using (var file = File.OpenRead(path))
        {
            if (file.ReadAtLeast(header, 16, throwOnEndOfStream: false) < 16 || !header.SequenceEqual("SQLite format 3\0"u8))
            {
                throw new StoreUnusableException(
                    $"{path} is not an Offload database (not a SQLite file). It was left untouched. " +
                    "Move it aside (or set OFFLOAD_HOME to another folder) and start again.");
            }
        }
    }

    private static void Migrate(SqliteConnection connection, string path)
    {
        var version = Convert.ToInt32(Scalar(connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
        if (version == 0 && Convert.ToInt64(Scalar(connection, "SELECT count(*) FROM sqlite_master"), CultureInfo.InvariantCulture) > 0)
        {
            throw new StoreUnusableException(
                $"{path} is a SQLite database of some other program. It was left untouched. " +
                "Move it aside (or set OFFLOAD_HOME to another folder) and start again.");
        }

        var assembly = typeof(SqliteTaskStore).Assembly;
        var migrations = assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("migrations/", StringComparison.Ordinal))
            .Select(n => (Name: n, Number: int.Parse(n["migrations/".Length..].Split('_')[0], CultureInfo.InvariantCulture)))
            .OrderBy(m => m.Number)
            .ToList();
        if (migrations.Count > 0 && version > migrations[^1].Number)
        {
            throw new StoreUnusableException(
                $"{path} was written by a newer Offload (schema {version}, this one knows {migrations[^1].Number}). Upgrade offload.");
        }

        // Only now, with the file known to be ours: switching to WAL rewrites the file's header.
        Exec(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");

        foreach (var (name, number) in migrations.Where(m => m.Number > version))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            var sql = new StreamReader(stream).ReadToEnd();
            using var tx = connection.BeginTransaction();
            Exec(connection, sql, tx);
            Exec(connection, $"PRAGMA user_version = {number}", tx);
            tx.Commit();
        }
    }

    public Task<TaskInfo> CreateTaskAsync(NewTask task, CancellationToken cancellationToken = default) =>
        WriteGroupedAsync(now => InsertTask(task, null, now), cancellationToken);

    public Task<IReadOnlyList<TaskInfo>> CreateGroupAsync(IReadOnlyList<NewTask> tasks, CancellationToken cancellationToken = default) =>
        WriteGroupedAsync<IReadOnlyList<TaskInfo>>(now =>
        {
            var group = Convert.ToInt64(Prepared("SELECT coalesce(max(group_id), 0) + 1 FROM tasks").ExecuteScalar(), CultureInfo.InvariantCulture);
            return [.. tasks.Select(t => InsertTask(t, group, now))];
        }, cancellationToken);

    private TaskInfo InsertTask(NewTask task, long? group, DateTimeOffset now)
    {
        var insert = Prepared("""
            INSERT INTO tasks (title, prompt, status, model, engine, repo_path, base_ref, base_commit, branch, worktree,
                               max_turns, max_cost_usd, timeout_seconds, created_at, check_command, check_tries, group_id, tags, again_of)
            VALUES ($title, $prompt, 'queued', $model, $engine, $repo, $baseRef, $baseCommit, '', '',
                    $maxTurns, $maxCost, $timeout, $now, $check, $checkTries, $group, $tags, $againOf)
            RETURNING id
            """,
            ("$title", task.Title), ("$prompt", task.Prompt), ("$model", task.Model), ("$engine", task.Engine),
            ("$repo", task.RepoPath), ("$baseRef", task.BaseRef), ("$baseCommit", task.BaseCommit),
            ("$maxTurns", task.MaxTurns), ("$maxCost", task.MaxCostUsd?.ToString(CultureInfo.InvariantCulture)),
            ("$timeout", task.TimeoutSeconds), ("$now", Format(now)), ("$check", task.Check), ("$checkTries", task.CheckTries),
            ("$group", group), ("$tags", task.Tags.Count == 0 ? null : "," + string.Join(",", task.Tags) + ","), ("$againOf", task.AgainOf));
        var id = Convert.ToInt64(insert.ExecuteScalar(), CultureInfo.InvariantCulture);
        var (branch, worktree) = task.Place(id);
        Prepared("UPDATE tasks SET branch = $branch, worktree = $worktree WHERE id = $id",
            ("$branch", branch), ("$worktree", worktree), ("$id", id)).ExecuteNonQuery();
        InsertEvent(id, 0, new TaskCreated(task.Prompt, task.Model, task.Engine, branch, task.BaseRef, task.BaseCommit, task.PlanFirst)
        {
            Check = task.Check,
            CheckTries = task.CheckTries,
            Group = group,
            Tags = task.Tags.Count == 0 ? null : task.Tags,
            AgainOf = task.AgainOf,
        }, now);
        return ReadTask(_writer, id)!;
    }

    public Task<TaskInfo?> GetTaskAsync(long id, CancellationToken cancellationToken = default)
    {
        using var connection = OpenReader();
        return Task.FromResult(ReadTask(connection, id));
    }

    public Task<Page<TaskInfo>> ListTasksAsync(TaskQuery query, CancellationToken cancellationToken = default)
    {
        using var connection = OpenReader();
        var sql = $"""
            SELECT {TaskColumns} FROM tasks
            WHERE ($all = 1 OR discarded = 0) AND ($after IS NULL OR id < $after) AND ($repo IS NULL OR repo_path = $repo)
              AND ($tag IS NULL OR tags LIKE '%,' || $tag || ',%' ESCAPE '\')
              AND ($grep IS NULL OR instr(lower(prompt), lower($grep)) > 0 OR instr(lower(title), lower($grep)) > 0)
              AND ($group IS NULL OR group_id = $group)
              AND ($series IS NULL OR id = $series OR again_of = $series)
              AND ($since IS NULL OR created_at >= $since)
            ORDER BY id DESC LIMIT $limit
            """;
        using var command = Command(connection, null, sql,
            ("$all", query.IncludeDiscarded || query.Group is not null || query.Series is not null ? 1 : 0), ("$after", query.After), ("$repo", query.RepoPath),
            ("$tag", LikeEscape(query.Tag)),
            ("$grep", query.Grep), ("$group", query.Group), ("$series", query.Series),
            ("$since", query.Since is { } since ? Format(since) : null), ("$limit", query.Limit + 1));
        var items = new List<TaskInfo>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                items.Add(MapTask(reader));
            }
        }

        string? next = null;
        if (items.Count > query.Limit)
        {
            items.RemoveAt(items.Count - 1);
            next = items[^1].Id.ToString(CultureInfo.InvariantCulture);
        }

        return Task.FromResult(new Page<TaskInfo>(items, next));
    }

    public Task<IReadOnlyList<StatsSums>> StatsAsync(TaskQuery query, string? by, TimeSpan utcOffset, CancellationToken cancellationToken = default)
    {
        const string Filter = """
            ($repo IS NULL OR repo_path = $repo)
              AND ($tag IS NULL OR tags LIKE '%,' || $tag || ',%' ESCAPE '\')
              AND ($since IS NULL OR created_at >= $since)
            """;
        var key = by switch
        {
            null => "'all'",
            "model" => "model",
            "repo" => "repo_path",
            "status" => "status",
            "day" => "date(created_at, printf('%+d minutes', $tz))",
            "tag" => "tag.k",
            _ => throw new ArgumentOutOfRangeException(nameof(by), by, "model, repo, status, day or tag"),
        };
        // A task with tags counts once under each (tags are stored ',a,b,'): the tags split into rows, joined to their tasks.
        var from = by == "tag"
            ? $"""
                WITH RECURSIVE split (id, k, rest) AS (
                    SELECT id, '', substr(tags, 2) FROM tasks WHERE tags IS NOT NULL AND {Filter}
                    UNION ALL SELECT id, substr(rest, 1, instr(rest, ',') - 1), substr(rest, instr(rest, ',') + 1) FROM split WHERE rest <> '')
                SELECT COLUMNS FROM (SELECT id, k FROM split WHERE k <> '' UNION ALL SELECT id, '(none)' FROM tasks WHERE tags IS NULL AND {Filter}) AS tag
                JOIN tasks ON tasks.id = tag.id GROUP BY tag.k
                """
            : $"SELECT COLUMNS FROM tasks WHERE {Filter} GROUP BY 1";
        // All the adding up is SQLite's, one row per key; the wall times of the tasks that ended (milliseconds) come in
        // one text per key, for the percentiles: reading 10,000 rows one value at a time costs more than the query.
        const string Ended = "status IN ('succeeded', 'failed', 'limited', 'cancelled')";
        var columns = $"""
            {key}, count(*), sum({Ended}), sum(status = 'succeeded'), sum(status = 'failed'), sum(status = 'limited'),
            sum(status = 'cancelled'), sum(check_passed IS NOT NULL), sum(check_passed IS 1), sum(turns), sum(input_tokens),
            sum(output_tokens), sum(cache_read_tokens), total(cost_usd), sum(retries), sum(approvals), sum(compactions),
            group_concat(CASE WHEN {Ended} THEN CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER) END)
            """;
        using var connection = OpenReader();
        using var command = Command(connection, null, from.Replace("COLUMNS", columns, StringComparison.Ordinal),
            ("$tz", (int)utcOffset.TotalMinutes), ("$repo", query.RepoPath), ("$tag", LikeEscape(query.Tag)),
            ("$since", query.Since is { } since ? Format(since) : null));
        var rows = new List<StatsSums>();
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            rows.Add(new StatsSums(
                r.GetString(0), r.GetInt32(1), r.GetInt32(2), r.GetInt32(3), r.GetInt32(4), r.GetInt32(5), r.GetInt32(6), r.GetInt32(7),
                r.GetInt32(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11), r.GetInt64(12), Math.Round((decimal)r.GetDouble(13), 6),
                r.GetInt64(14), r.GetInt64(15), r.GetInt64(16),
                r.IsDBNull(17) ? [] : [.. r.GetString(17).Split(',').Select(ms => long.Parse(ms, CultureInfo.InvariantCulture))]));
        }

        return Task.FromResult<IReadOnlyList<StatsSums>>(rows);
    }

    /// <summary>A tag as a LIKE pattern matches it only: its <c>\ % _</c> escaped.</summary>
    private static string? LikeEscape(string? text) =>
        text?.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);

    public Task<IReadOnlyList<TaskInfo>> TasksInStatusAsync(IReadOnlyCollection<OffloadTaskStatus> statuses, CancellationToken cancellationToken = default)
    {
        using var connection = OpenReader();
        var names = string.Join(",", statuses.Select(s => $"'{s.ToWire()}'"));
        using var command = Command(connection, null, $"SELECT {TaskColumns} FROM tasks WHERE status IN ({names}) ORDER BY id");
        var items = new List<TaskInfo>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            items.Add(MapTask(reader));
        }

        return Task.FromResult<IReadOnlyList<TaskInfo>>(items);
    }

    public Task<int> BeginAttemptAsync(long taskId, CancellationToken cancellationToken = default) =>
        WriteGroupedAsync(_ => NextAttempt(taskId), cancellationToken);

    public Task<AgentEvent> BeginAttemptAsync(long taskId, AgentEvent first, CancellationToken cancellationToken = default) =>
        WriteGroupedAsync(now => InsertEvent(taskId, NextAttempt(taskId), first, now), cancellationToken);

    private int NextAttempt(long taskId) =>
        Convert.ToInt32(
            Prepared("UPDATE tasks SET attempt = attempt + 1 WHERE id = $id RETURNING attempt", ("$id", taskId)).ExecuteScalar()
                ?? throw new KeyNotFoundException($"task {taskId} not found"),
            CultureInfo.InvariantCulture);

    public Task<AgentEvent> AppendAsync(long taskId, int attempt, AgentEvent body, CancellationToken cancellationToken = default) =>
        AppendCoreAsync(taskId, attempt, body, cancellationToken);

    public Task<IReadOnlyList<AgentEvent>> AppendAllAsync(long taskId, int attempt, IReadOnlyList<AgentEvent> bodies, CancellationToken cancellationToken = default) =>
        AppendGroupedAsync(taskId, attempt, bodies, cancellationToken);

    public Task<AgentEvent> AppendUnfencedAsync(long taskId, AgentEvent body, CancellationToken cancellationToken = default) =>
        AppendCoreAsync(taskId, null, body, cancellationToken);

    private Task<AgentEvent> AppendCoreAsync(long taskId, int? attempt, AgentEvent body, CancellationToken cancellationToken) =>
        WriteGroupedAsync(now => InsertEvent(taskId, attempt, body, now), cancellationToken);

    private Task<IReadOnlyList<AgentEvent>> AppendGroupedAsync(long taskId, int? attempt, IReadOnlyList<AgentEvent> bodies, CancellationToken cancellationToken) =>
        WriteGroupedAsync<IReadOnlyList<AgentEvent>>(now => [.. bodies.Select(body => InsertEvent(taskId, attempt, body, now))], cancellationToken);

    private async Task<T> WriteGroupedAsync<T>(Func<DateTimeOffset, T> write, CancellationToken cancellationToken)
        where T : notnull =>
        (T)await WriteGroupedAsync(new PendingWrite(now => write(now)), cancellationToken);

    /// <summary>
    /// Group commit: writes (new tasks, attempts, appended events) that arrive while a batch is being made wait, and go
    /// together in the next transaction, one fsync. Each write completes only once it is durable, and each is its own
    /// unit: one that fails (a stale attempt, say) is rolled back to its savepoint alone. A write that finds no writer at
    /// work is made at once by its caller, with whatever else is waiting, on the caller's own thread. When more have
    /// come in meanwhile, the store's writer thread takes over until none are left, so that no caller is kept writing
    /// for the others and no write waits for a place in the thread pool's queue before it may go (a lock handed to a
    /// waiting continuation held every write up for 100 ms and more with 100 tasks starting at once on 2 CPUs).
    /// </summary>
    private async Task<object> WriteGroupedAsync(PendingWrite mine, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        bool inline;
        lock (_pendingGate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            _pending.Add(mine);
            inline = !_writing;
            _writing = true;
        }

        if (inline)
        {
            List<PendingWrite> batch;
            lock (_pendingGate)
            {
                batch = _pending;
                _pending = [];
            }

            try
            {
                WriteBatch(batch); // completes each write with its outcome; throws nothing of its own
            }
            finally
            {
                lock (_pendingGate)
                {
                    if (_pending.Count > 0)
                    {
                        _threadWrites = true; // more came in meanwhile: the writer thread goes on with them
                    }
                    else
                    {
                        _writing = false;
                    }

                    if (_threadWrites || _stopping)
                    {
                        _wake.Release();
                    }
                }
            }

            return await mine.Done.Task;
        }

        try
        {
            return await mine.Done.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            lock (_pendingGate)
            {
                if (_pending.Remove(mine))
                {
                    throw; // not taken by a writer: nothing was stored
                }
            }

            return await mine.Done.Task; // already being written: its outcome is this write's
        }
    }

    /// <summary>The writer thread: takes over from a caller when writes are still waiting, and drains them.</summary>
    private void WriteLoop()
    {
        while (true)
        {
            _wake.Wait();
            lock (_pendingGate)
            {
                if (!_threadWrites)
                {
                    if (_stopping && !_writing)
                    {
                        return;
                    }

                    continue; // woken for a stop while a caller still writes: it wakes this again when done
                }
            }

            while (true)
            {
                List<PendingWrite> batch;
                lock (_pendingGate)
                {
                    if (_pending.Count == 0)
                    {
                        _threadWrites = false;
                        _writing = false;
                        if (_stopping)
                        {
                            return;
                        }

                        break;
                    }

                    batch = _pending;
                    _pending = [];
                }

                WriteBatch(batch);
            }
        }
    }

    /// <summary>Makes a batch of writes in one transaction (by the one writer at work) and completes each with its outcome.</summary>
    private void WriteBatch(List<PendingWrite> batch)
    {
        var outcomes = new (object? Result, Exception? Error)[batch.Count];
        try
        {
            using var tx = Begin();
            var now = _time.GetUtcNow();
            for (var i = 0; i < batch.Count; i++)
            {
                Prepared("SAVEPOINT one_write").ExecuteNonQuery();
                try
                {
                    outcomes[i] = (batch[i].Write(now), null);
                    Prepared("RELEASE one_write").ExecuteNonQuery();
                }
                catch (Exception e)
                {
                    try
                    {
                        Prepared("ROLLBACK TO one_write").ExecuteNonQuery();
                        Prepared("RELEASE one_write").ExecuteNonQuery();
                    }
                    catch (SqliteException)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e); // the transaction itself is gone: the whole batch fails
                    }

                    outcomes[i] = (null, e);
                }
            }

            tx.Commit();
        }
        catch (Exception e)
        {
            var failure = WriteFailure(e);
            foreach (var write in batch)
            {
                write.Done.TrySetException(failure); // the transaction as a whole failed: none of the batch was stored
            }

            return;
        }

        for (var i = 0; i < batch.Count; i++)
        {
            if (outcomes[i].Error is { } error)
            {
                batch[i].Done.TrySetException(WriteFailure(error));
            }
            else
            {
                batch[i].Done.TrySetResult(outcomes[i].Result!);
            }
        }
    }

    /// <summary>A failure of SQLite itself, as the callers see it: a full disk (with where), or a write to try again later.</summary>
    private Exception WriteFailure(Exception e) => e switch
    {
        _ when DiskFullException.Find(e, _folder) is { } full => full,
        SqliteException sqlite => new StoreWriteException($"the database in {_folder} could not store a write: {sqlite.Message}", sqlite),
        _ => e,
    };

    private sealed class PendingWrite(Func<DateTimeOffset, object> write)
    {
        public Func<DateTimeOffset, object> Write { get; } = write;

        public TaskCompletionSource<object> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Takes the next seq (fenced by attempt when given), writes the event, and updates the task's projection.</summary>
    private AgentEvent InsertEvent(long taskId, int? attempt, AgentEvent body, DateTimeOffset now)
    {
        var next = Prepared("""
            UPDATE tasks SET last_seq = last_seq + 1
            WHERE id = $id AND ($attempt IS NULL OR attempt = $attempt)
            RETURNING last_seq, attempt
            """, ("$id", taskId), ("$attempt", attempt));
        long seq;
        int currentAttempt;
        using (var reader = next.ExecuteReader())
        {
            if (!reader.Read())
            {
                throw attempt is { } a ? new StaleAttemptException(taskId, a) : new KeyNotFoundException($"task {taskId} not found");
            }

            seq = reader.GetInt64(0);
            currentAttempt = reader.GetInt32(1);
        }

        var appended = (BeforeAppend is { } transform ? transform(body with { TaskId = taskId }) : body) with { TaskId = taskId, Seq = seq, Attempt = currentAttempt, At = now };
        var json = JsonSerializer.Serialize(appended, OffloadJson.Info<AgentEvent>());
        var type = json.AsSpan(9, json.IndexOf('"', 9) - 9).ToString(); // {"type":"…" is always first
        Prepared("INSERT INTO events (task_id, seq, attempt, type, at, data) VALUES ($id, $seq, $attempt, $type, $at, $data)",
            ("$id", taskId), ("$seq", seq), ("$attempt", currentAttempt), ("$type", type), ("$at", Format(now)), ("$data", json)).ExecuteNonQuery();
        Project(appended);
        return appended;
    }

    private void Project(AgentEvent e)
    {
        switch (e)
        {
            case StatusChanged s:
                Prepared("""
                    UPDATE tasks SET status = $status,
                        started_at = CASE WHEN $status = 'running' AND started_at IS NULL THEN $at ELSE started_at END,
                        finished_at = CASE WHEN $final = 1 THEN $at ELSE NULL END,
                        error = CASE WHEN $final = 1 THEN error ELSE NULL END,
                        seen = CASE WHEN $final = 1 THEN 0 ELSE seen END
                    WHERE id = $id
                    """, ("$status", s.To.ToWire()), ("$at", Format(e.At)), ("$final", s.To.IsFinal() ? 1 : 0), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case AssistantMessage m:
                Prepared("UPDATE tasks SET turns = max(turns, $turn) WHERE id = $id", ("$turn", m.Turn), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case UsageRecorded u:
                var read = Prepared("SELECT cost_usd FROM tasks WHERE id = $id", ("$id", e.TaskId));
                var cost = decimal.Parse((string)read.ExecuteScalar()!, CultureInfo.InvariantCulture) + u.CostUsd;
                Prepared("""
                    UPDATE tasks SET input_tokens = input_tokens + $in, output_tokens = output_tokens + $out, cost_usd = $cost,
                        cache_read_tokens = cache_read_tokens + $cached WHERE id = $id
                    """, ("$in", u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens), ("$out", u.OutputTokens),
                    ("$cost", cost.ToString(CultureInfo.InvariantCulture)), ("$cached", u.CacheReadTokens), ("$id", e.TaskId)).ExecuteNonQuery();

                break;
            case TaskFinished f:
                Prepared("UPDATE tasks SET summary = coalesce($summary, summary), error = $error WHERE id = $id",
                    ("$summary", f.Summary), ("$error", f.Status == OffloadTaskStatus.Succeeded ? null : f.Reason), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case AttemptStarted a:
                Prepared("UPDATE tasks SET model = $model, turns = 0, summary = NULL, error = NULL, discarded = 0, session_id = NULL, plan_done = NULL, plan_total = NULL, check_passed = NULL WHERE id = $id",
                    ("$model", a.Model), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case LimitsChanged l:
                Prepared("""
                    UPDATE tasks SET max_turns = coalesce($turns, max_turns), max_cost_usd = coalesce($cost, max_cost_usd),
                        timeout_seconds = coalesce($timeout, timeout_seconds) WHERE id = $id
                    """, ("$turns", l.MaxTurns), ("$cost", l.MaxCostUsd?.ToString(CultureInfo.InvariantCulture)),
                    ("$timeout", l.TimeoutSeconds), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case TaskDiscarded:
                Prepared("UPDATE tasks SET discarded = 1 WHERE id = $id", ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case ModelRetried:
                Prepared("UPDATE tasks SET retries = retries + 1 WHERE id = $id", ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case PermissionRequested:
                Prepared("UPDATE tasks SET approvals = approvals + 1 WHERE id = $id", ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case ContextCompacted:
                Prepared("UPDATE tasks SET compactions = compactions + 1 WHERE id = $id", ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case CheckRan c:
                Prepared("UPDATE tasks SET check_passed = $passed WHERE id = $id", ("$passed", c.Passed ? 1 : 0), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case PlanItemChanged p:
                Prepared("UPDATE tasks SET plan_done = $done, plan_total = $total WHERE id = $id",
                    ("$done", p.Done), ("$total", p.Total), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
            case TaskRewound r: // the plan as it was at the turn rewound to
                var last = Prepared("SELECT data FROM events WHERE task_id = $id AND type = 'plan.item' AND attempt = $attempt AND seq <= $seq ORDER BY seq DESC LIMIT 1",
                    ("$id", e.TaskId), ("$attempt", e.Attempt), ("$seq", r.ToSeq)).ExecuteScalar() as string;
                var plan = last is null ? null : JsonSerializer.Deserialize(last, OffloadJson.Info<AgentEvent>()) as PlanItemChanged;
                Prepared("UPDATE tasks SET plan_done = $done, plan_total = $total WHERE id = $id",
                    ("$done", plan?.Done), ("$total", plan?.Total), ("$id", e.TaskId)).ExecuteNonQuery();
                break;
        }
    }

    public Task<IReadOnlyList<AgentEvent>> ReadEventsAsync(long taskId, long afterSeq = 0, int limit = int.MaxValue, CancellationToken cancellationToken = default)
    {
        using var connection = OpenReader();
        using var command = Command(connection, null, "SELECT data FROM events WHERE task_id = $id AND seq > $after ORDER BY seq LIMIT $limit",
            ("$id", taskId), ("$after", afterSeq), ("$limit", limit));
        var events = new List<AgentEvent>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            events.Add(JsonSerializer.Deserialize(reader.GetString(0), OffloadJson.Info<AgentEvent>())!);
        }

        return Task.FromResult<IReadOnlyList<AgentEvent>>(events);
    }

    public Task SetSessionIdAsync(long taskId, string sessionId, CancellationToken cancellationToken = default) =>
        WriteAsync("UPDATE tasks SET session_id = $v WHERE id = $id", taskId, sessionId, cancellationToken);

    public Task<string?> GetSessionIdAsync(long taskId, CancellationToken cancellationToken = default)
    {
        using var connection = OpenReader();
        using var command = Command(connection, null, "SELECT session_id FROM tasks WHERE id = $id", ("$id", taskId));
        return Task.FromResult(command.ExecuteScalar() as string);
    }

    public async Task MarkSeenAsync(long taskId, CancellationToken cancellationToken = default)
    {
        try
        {
            await WriteAsync("UPDATE tasks SET seen = 1 WHERE id = $id AND seen = 0", taskId, null, cancellationToken);
        }
        catch (DiskFullException)
        {
            // a report is still shown on a full disk; the flag is set by the next look
        }
    }

    public Task SetDiscardedAsync(long taskId, CancellationToken cancellationToken = default) =>
        WriteAsync("UPDATE tasks SET discarded = 1 WHERE id = $id", taskId, null, cancellationToken);

    private Task WriteAsync(string sql, long taskId, object? value, CancellationToken cancellationToken) =>
        WriteGroupedAsync(_ => (object)Prepared(sql, ("$id", taskId), ("$v", value)).ExecuteNonQuery(), cancellationToken);

    private const string TaskColumns = """
        id, title, prompt, status, model, engine, repo_path, base_ref, base_commit, branch, worktree, summary, error,
        turns, input_tokens, output_tokens, cost_usd, attempt, max_turns, max_cost_usd, timeout_seconds, seen, discarded,
        created_at, started_at, finished_at, plan_done, plan_total, check_command, check_tries, check_passed, group_id, tags, again_of,
        retries, approvals, compactions, cache_read_tokens
        """;

    private static TaskInfo? ReadTask(SqliteConnection connection, long id)
    {
        using var command = Command(connection, null, $"SELECT {TaskColumns} FROM tasks WHERE id = $id", ("$id", id));
        using var reader = command.ExecuteReader();
        return reader.Read() ? MapTask(reader) : null;
    }

    private static TaskInfo MapTask(SqliteDataReader r) => new()
    {
        Id = r.GetInt64(0),
        Title = r.GetString(1),
        Prompt = r.GetString(2),
        Status = OffloadTaskStatusExtensions.ParseWire(r.GetString(3)),
        Model = r.GetString(4),
        Engine = r.GetString(5),
        RepoPath = r.GetString(6),
        BaseRef = r.GetString(7),
        BaseCommit = r.GetString(8),
        Branch = r.GetString(9),
        Worktree = r.GetString(10),
        Summary = r.IsDBNull(11) ? null : r.GetString(11),
        Error = r.IsDBNull(12) ? null : r.GetString(12),
        Turns = r.GetInt32(13),
        Usage = new Usage(r.GetInt64(14), r.GetInt64(15), decimal.Parse(r.GetString(16), CultureInfo.InvariantCulture)),
        Attempt = r.GetInt32(17),
        MaxTurns = r.IsDBNull(18) ? null : r.GetInt32(18),
        MaxCostUsd = r.IsDBNull(19) ? null : decimal.Parse(r.GetString(19), CultureInfo.InvariantCulture),
        TimeoutSeconds = r.IsDBNull(20) ? null : r.GetInt32(20),
        Seen = r.GetInt32(21) != 0,
        Discarded = r.GetInt32(22) != 0,
        CreatedAt = Parse(r.GetString(23)),
        StartedAt = r.IsDBNull(24) ? null : Parse(r.GetString(24)),
        FinishedAt = r.IsDBNull(25) ? null : Parse(r.GetString(25)),
        Plan = r.IsDBNull(26) ? null : new PlanProgress(r.GetInt32(26), r.GetInt32(27)),
        Check = r.IsDBNull(28) ? null : r.GetString(28),
        CheckTries = r.IsDBNull(29) ? null : r.GetInt32(29),
        CheckPassed = r.IsDBNull(30) ? null : r.GetInt32(30) != 0,
        Group = r.IsDBNull(31) ? null : r.GetInt64(31),
        Tags = r.IsDBNull(32) ? [] : r.GetString(32).Split(',', StringSplitOptions.RemoveEmptyEntries),
        AgainOf = r.IsDBNull(33) ? null : r.GetInt64(33),
        Retries = r.GetInt32(34),
        Approvals = r.GetInt32(35),
        ContextCompactions = r.GetInt32(36),
        CacheReadTokens = r.GetInt64(37),
    };

    private SqliteConnection OpenReader()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private static string Format(DateTimeOffset at) => at.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(string at) => DateTimeOffset.Parse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    /// <summary>
    /// A command on the writer connection, prepared once and kept: the same SQL text gets the same command (and the
    /// same compiled statement) every time, with these parameter values. Only under the write lock; never disposed by
    /// the caller.
    /// </summary>
    private SqliteCommand Prepared(string sql, params (string Name, object? Value)[] parameters)
    {
        if (!_prepared.TryGetValue(sql, out var command))
        {
            command = Command(_writer, null, sql, parameters);
            command.Prepare();
            _prepared[sql] = command;
            return command;
        }

        for (var i = 0; i < parameters.Length; i++)
        {
            command.Parameters[i].Value = parameters[i].Value ?? DBNull.Value;
        }

        return command;
    }

    /// <summary>Starts a write transaction on the writer connection (under the write lock), with kept statements.</summary>
    private WriteTransaction Begin()
    {
        Prepared("BEGIN IMMEDIATE").ExecuteNonQuery();
        return new WriteTransaction(this);
    }

    /// <summary>BEGIN IMMEDIATE … COMMIT through kept statements; rolled back when disposed uncommitted.</summary>
    private sealed class WriteTransaction(SqliteTaskStore store) : IDisposable
    {
        private bool _committed;

        public void Commit()
        {
            store.Prepared("COMMIT").ExecuteNonQuery();
            _committed = true;
        }

        public void Dispose()
        {
            if (!_committed && SQLitePCL.raw.sqlite3_get_autocommit(store._writer.Handle) == 0)
            {
                store.Prepared("ROLLBACK").ExecuteNonQuery();
            }
        }
    }

    private static void Exec(SqliteConnection connection, string sql, SqliteTransaction? tx = null)
    {
        using var command = Command(connection, tx, sql);
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = Command(connection, null, sql);
        return command.ExecuteScalar();
    }

    public void Dispose()
    {
        lock (_pendingGate)
        {
            if (!_stopping)
            {
                _stopping = true;
                _wake.Release();
            }
        }

        _writerThread.Join(); // what was submitted before is written first
        foreach (var command in _prepared.Values)
        {
            command.Dispose();
        }

        _writer.Dispose();
        SqliteConnection.ClearAllPools();
    }
}
