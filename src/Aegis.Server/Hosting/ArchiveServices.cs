using System.Security.Cryptography.X509Certificates;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Query;
using Aegis.Archive.Security;
using Aegis.Archive.Storage;

namespace Aegis.Server.Hosting;

/// <summary>The archive's components for one data folder, built once at start (and by the admin subcommands).</summary>
public sealed class ArchiveServices : IAsyncDisposable
{
    private ArchiveServices(DataDirectory data, AegisOptions options, ArchiveDatabase db, MasterKeyProvider keys, FileBlobStore blobs,
        ArchiveIndex index, AuditTrail audit, AccountStore accounts, AeRegistry aes)
    {
        Data = data;
        Options = options;
        Database = db;
        Keys = keys;
        Blobs = blobs;
        Index = index;
        Query = new QueryEngine(index);
        Audit = audit;
        Accounts = accounts;
        AeRegistry = aes;
        var policy = Enum.TryParse<DuplicatePolicy>(options.Dicom.DuplicatePolicy, ignoreCase: true, out var p) ? p : DuplicatePolicy.Replace;
        Ingestor = new InstanceIngestor(blobs, index, policy, options.Ingest.ToReaderOptions(), options.Ingest.MaxDataSetLength,
            options.Storage.MinFreeBytes > 0 ? new StorageFloor(data.StoreDirectory, options.Storage.MinFreeBytes) : null);
        Metrics.StorageFree(() => new StorageFloor(data.StoreDirectory, 0).AvailableBytes());
        AccessPolicy = new DimseAccessPolicy(options.Dicom.AeTitle, aes, accounts, jwtValidator: null, audit);
        if (!string.IsNullOrEmpty(options.Tls.TrustedCaFile))
        {
            TrustedRoots = [];
            TrustedRoots.ImportFromPemFile(options.Tls.TrustedCaFile);
        }
    }

    public DataDirectory Data { get; }
    public AegisOptions Options { get; }
    public ArchiveDatabase Database { get; }
    public MasterKeyProvider Keys { get; }
    public FileBlobStore Blobs { get; }
    public ArchiveIndex Index { get; }
    public QueryEngine Query { get; }
    public InstanceIngestor Ingestor { get; }
    public AuditTrail Audit { get; }
    public AccountStore Accounts { get; }
    public AeRegistry AeRegistry { get; }
    public DimseAccessPolicy AccessPolicy { get; private set; }
    public X509Certificate2Collection? TrustedRoots { get; }
    public ArchiveMetrics Metrics { get; } = new();

    private Aegis.Archive.Deidentification.ResearchView? _research;

    /// <summary>The researcher role's de-identified view (issue 8); projects and mappings live in the index database, secrets under keys/secrets.key.</summary>
    public Aegis.Archive.Deidentification.ResearchView Research => _research ??= new(Index, Blobs, Accounts,
        new Aegis.Archive.Deidentification.DeidentificationProjects(Database, SecretProtector.OpenOrCreate(Path.Combine(Data.KeysDirectory, "secrets.key"))));

    /// <summary>
    /// Lets DIMSE user identity negotiation accept JWTs (PS3.7 D.3.3.7 type 5) through the web layer's validator
    /// (our OpenID Connect issuer and the configured external ones). Call before the DIMSE listeners start.
    /// </summary>
    public void UseJwtValidator(IJwtValidator validator) =>
        AccessPolicy = new DimseAccessPolicy(Options.Dicom.AeTitle, AeRegistry, Accounts, validator, Audit);

    /// <summary>Opens (creating on first use) the archive in <paramref name="data"/> with <paramref name="options"/>.</summary>
    public static ArchiveServices Open(DataDirectory data, AegisOptions options)
    {
        data.EnsureCreated();
        var db = ArchiveDatabase.Open(data.Root, options.Index.ConnectionString);
        var keys = MasterKeyProvider.Load(new MasterKeyOptions
        {
            DataDirectory = data.Root,
            SecretFilePath = string.IsNullOrEmpty(options.Storage.MasterKeyFile) ? null : options.Storage.MasterKeyFile,
        });
        var blobs = new FileBlobStore(data.Root, keys);
        var index = new ArchiveIndex(db);
        var audit = new AuditTrail(db);
        var accounts = new AccountStore(db, SecretProtector.OpenOrCreate(Path.Combine(data.KeysDirectory, "secrets.key")), audit);
        var aes = new AeRegistry(db, audit);
        return new ArchiveServices(data, options, db, keys, blobs, index, audit, accounts, aes);
    }

    public async ValueTask DisposeAsync()
    {
        await Audit.DisposeAsync().ConfigureAwait(false);
        await Database.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Counters for /metrics (Prometheus text format).</summary>
public sealed class ArchiveMetrics
{
    private long _stored, _duplicates, _refused, _retrieved, _associations, _rejected;
    public void Stored(IngestOutcome outcome)
    {
        if (outcome is IngestOutcome.Stored or IngestOutcome.Replaced) Interlocked.Increment(ref _stored);
        else if (outcome == IngestOutcome.AlreadyStored) Interlocked.Increment(ref _duplicates);
        else Interlocked.Increment(ref _refused);
    }
    public void Retrieved(int n) => Interlocked.Add(ref _retrieved, n);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Func<long>> _shed = new();
    private Func<long>? _storageFree;
    /// <summary>A listener's count of pending connections closed to make room for newer ones (a flood shows here first).</summary>
    public void ShedCounter(string listener, Func<long> read) => _shed[listener] = read;
    /// <summary>Free bytes on the data volume, for the operator's alert before the store floor refuses images.</summary>
    public void StorageFree(Func<long> read) => _storageFree = read;
    public void Association(bool accepted) => Interlocked.Increment(ref accepted ? ref _associations : ref _rejected);

    public string ToPrometheus() =>
        $"""
        # HELP aegis_instances_stored_total Instances durably stored.
        # TYPE aegis_instances_stored_total counter
        aegis_instances_stored_total {Interlocked.Read(ref _stored)}
        # TYPE aegis_instances_duplicate_total counter
        aegis_instances_duplicate_total {Interlocked.Read(ref _duplicates)}
        # TYPE aegis_instances_refused_total counter
        aegis_instances_refused_total {Interlocked.Read(ref _refused)}
        # TYPE aegis_instances_retrieved_total counter
        aegis_instances_retrieved_total {Interlocked.Read(ref _retrieved)}
        # TYPE aegis_associations_accepted_total counter
        aegis_associations_accepted_total {Interlocked.Read(ref _associations)}
        # TYPE aegis_associations_rejected_total counter
        aegis_associations_rejected_total {Interlocked.Read(ref _rejected)}
        # HELP aegis_connections_shed_total Pending connections closed to make room for newer ones, per listener.
        # TYPE aegis_connections_shed_total counter
        {string.Concat(_shed.OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => $"aegis_connections_shed_total{{listener=\"{x.Key}\"}} {x.Value()}\n"))}# HELP aegis_storage_free_bytes Free bytes on the volume of the data folder.
        # TYPE aegis_storage_free_bytes gauge
        aegis_storage_free_bytes {_storageFree?.Invoke() ?? -1}

        """;
}
