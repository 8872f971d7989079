package org.peerns.app.model

import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.flow.updateAndGet
import kotlinx.coroutines.selects.select
import org.peerns.ffi.BackupListener
import org.peerns.ffi.Contact
import org.peerns.ffi.DocumentOpener
import org.peerns.ffi.PeernsNodeInterface
import org.peerns.ffi.RpcBackupProgress
import org.peerns.ffi.RpcBackupSummary

/** What the backup screen shows. */
data class BackupState(
    /** Contacts a backup may go to (the device must serve a folder and grant us writing there). */
    val contacts: List<Contact> = emptyList(),
    /** The folders to back up, as [BackupFolders] keeps them (paths, or the app's folder references). */
    val folders: List<String> = emptyList(),
    val running: Boolean = false,
    /** The folder being listed for the backup now ([BackupFolders.list]), before it is sent. */
    val preparing: String? = null,
    /** The backup waits for battery saver to go off ([BackupViewModel.startNow] starts it anyway). */
    val waitingForSaver: Boolean = false,
    /**
     * The running backup was paused when battery saver came on; it goes on when saver goes off
     * ([BackupViewModel.startNow] continues it now).
     */
    val pausedForSaver: Boolean = false,
    /** The latest step of the running (or last) backup. */
    val progress: RpcBackupProgress? = null,
    /** What the last finished backup did. */
    val summary: RpcBackupSummary? = null,
    val error: String? = null,
)

/**
 * Backup of chosen folders into another device of ours, with progress. A backup started while
 * [powerSaver] is on waits until it is off (or [startNow]), as a Wi-Fi-only one waits out a
 * metered network; one running when it comes on is paused (its `rpcBackup` call cancelled, which
 * stops it in the core) and started again with the same arguments when it goes off (or
 * [startNow]): the core skips the files the peer has and resumes a partly sent one. Cancelling
 * the coroutine of [backup] stops it for good. Pure Kotlin.
 */
class BackupViewModel(
    private val node: PeernsNodeInterface,
    private val powerSaver: StateFlow<Boolean> = BatterySaver.OFF,
    private val store: BackupFolders = BackupFolders.InMemory(),
) {
    private val mutableState = MutableStateFlow(BackupState(folders = store.load()))
    val state: StateFlow<BackupState> = mutableState.asStateFlow()

    /** The screen's battery saver notice, null while it is off. */
    val notice: Flow<String?> = BatterySaver.notice(powerSaver, BatterySaver.BACKUP)

    /** The user wants the waiting backup to start, or the paused one to continue, despite battery saver. */
    private val overridden = MutableStateFlow(false)

    /** Reports progress until [stop]: a cancelled `rpcBackup` may still deliver a late step. */
    private inner class Listener : BackupListener {
        @Volatile private var active = true

        override fun onBackupProgress(progress: RpcBackupProgress) {
            if (active) mutableState.update { it.copy(progress = progress) }
        }

        fun stop() {
            active = false
        }
    }

    suspend fun refresh() = guard {
        val contacts = node.contacts().sortedBy { it.name.lowercase() }
        mutableState.update { it.copy(contacts = contacts, error = null) }
    }

    /** Adds [folder] (as [BackupFolders] keeps it) to the backup; kept for the next time. */
    fun choose(folder: String) = keep { if (folder in it) it else it + folder }

    fun drop(folder: String) = keep { it - folder }

    /** The folders after [change], in the state and kept by [store]. */
    private fun keep(change: (List<String>) -> List<String>) =
        store.save(mutableState.updateAndGet { it.copy(folders = change(it.folders)) }.folders)

    /**
     * Backs the chosen folders up into [into] (e.g. `/incoming`) on contact [fingerprint];
     * returns when it is done. Files the device has already are skipped, interrupted ones resume.
     * Under battery saver it first waits ([BackupState.waitingForSaver]) until it is off or
     * [startNow]; battery saver coming on while it runs pauses it ([BackupState.pausedForSaver])
     * until it is off again or [startNow].
     */
    suspend fun backup(fingerprint: String, into: String = DEFAULT_INTO) = guard {
        val chosen = mutableState.value.folders
        if (chosen.isEmpty()) throw IllegalArgumentException("choose a folder first")
        if (mutableState.value.running) throw IllegalArgumentException("a backup is running")
        overridden.value = false
        mutableState.update { it.copy(running = true, progress = null, summary = null, error = null) }
        try {
            // Each folder listed as it is now (the app lists a picked folder's documents; the
            // core opens each when its turn comes), then sent. One that cannot be read is said
            // and the others go on.
            val unreadable = mutableListOf<String>()
            val sources = chosen.mapNotNull { folder ->
                mutableState.update { it.copy(preparing = folder) }
                try {
                    store.list(folder)
                } catch (e: IllegalArgumentException) {
                    unreadable += e.message ?: folder
                    null
                }
            }
            mutableState.update { it.copy(preparing = null, error = unreadable.joinToString("\n").ifEmpty { null }) }
            if (sources.isEmpty()) throw IllegalArgumentException(unreadable.joinToString("\n"))
            val source = BackupSource.of(sources)
            var started = false
            while (true) {
                if (powerSaver.value && !overridden.value) awaitSaverOff(paused = started)
                started = true
                val summary = attempt(fingerprint, source, into) ?: continue
                mutableState.update { it.copy(summary = summary) }
                break
            }
        } finally {
            mutableState.update { it.copy(running = false, preparing = null, waitingForSaver = false, pausedForSaver = false) }
        }
    }

    /** Waits (before the backup or paused in it) until battery saver is off or [startNow]. */
    private suspend fun awaitSaverOff(paused: Boolean) {
        overridden.value = false
        mutableState.update { it.copy(waitingForSaver = !paused, pausedForSaver = paused) }
        combine(powerSaver, overridden) { saver, now -> !saver || now }.first { it }
        mutableState.update { it.copy(waitingForSaver = false, pausedForSaver = false) }
    }

    /** One backup call: its summary, or null when battery saver came on and stopped it. */
    private suspend fun attempt(fingerprint: String, source: BackupSource, into: String): RpcBackupSummary? = coroutineScope {
        val listener = Listener()
        val run = async {
            when (source) {
                is BackupSource.Paths -> node.rpcBackup(fingerprint, source.paths, into, listener)
                is BackupSource.Documents -> node.rpcBackupDocuments(fingerprint, source.names, into, source.opener, listener)
            }
        }
        val pause = async { saverComesOn() }
        try {
            select {
                run.onAwait { it }
                pause.onAwait { null }
            }
        } finally {
            listener.stop()
            pause.cancel()
            run.cancel()
        }
    }

    /**
     * Returns when battery saver comes on; after [startNow] (the backup runs under saver) only
     * once it has gone off and comes on again.
     */
    private suspend fun saverComesOn() {
        if (overridden.value) powerSaver.first { !it }
        powerSaver.first { it }
    }

    /** Starts the backup that waits for battery saver, or continues the paused one, now. */
    fun startNow() {
        overridden.value = true
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    companion object {
        /** The folder the receiving device serves for backups, by convention. */
        const val DEFAULT_INTO = "/incoming"
    }
}

/** What a finished backup did, as the screen says it. */
fun RpcBackupSummary.line(): String = buildString {
    append("done: $files ${if (files == 1UL) "file" else "files"} sent ($bytes bytes), $skipped already there")
    if (leftOut > 0u) append(", $leftOut left out (a name a path cannot hold, or one taken twice)")
    if (unreadable > 0u) append(", $unreadable could not be read")
}

/**
 * Where the backup's chosen folders are kept between visits, and how a backup reads one. The app
 * keeps the folder references the system's picker gave (and the permission to read them) and
 * lists a folder's documents when a backup starts, which the core then opens one at a time; on a
 * desktop or in tests a folder is a path the core walks itself.
 */
interface BackupFolders {
    /** The folders chosen before, in order. */
    fun load(): List<String>

    /** Keeps [folders] for the next visit. */
    fun save(folders: List<String>)

    /** What a backup reads of [folder], listed as it is now (may take a while: runs before the backup). */
    suspend fun list(folder: String): BackupSource = BackupSource.Paths(listOf(folder))

    /** Folders that are paths, kept in memory. */
    class InMemory : BackupFolders {
        private var kept = emptyList<String>()

        override fun load() = kept

        override fun save(folders: List<String>) {
            kept = folders
        }
    }
}

/** What a backup reads: folders the core walks, or documents the platform lists and opens. */
sealed interface BackupSource {
    /** Folders (or files) on the file system. */
    data class Paths(val paths: List<String>) : BackupSource

    /**
     * Documents by their paths below the backup (`Camera/IMG_1.jpg`), in order; [opener] opens
     * the one at an index, handing its file descriptor over.
     */
    class Documents(val names: List<String>, val opener: DocumentOpener) : BackupSource

    companion object {
        /**
         * The folders' sources as one: their paths together, or their documents together (one
         * opener finding each index's folder). The app's folders are all documents, a test's all
         * paths; one backup cannot mix them.
         */
        fun of(sources: List<BackupSource>): BackupSource {
            val paths = sources.filterIsInstance<Paths>()
            if (paths.size == sources.size) return Paths(paths.flatMap { it.paths })
            require(paths.isEmpty()) { "a backup reads either paths or documents" }
            val documents = sources.filterIsInstance<Documents>()
            val starts = documents.runningFold(0) { at, d -> at + d.names.size }
            val opener = object : DocumentOpener {
                override fun openDocument(index: ULong): Int {
                    val i = index.toInt()
                    val folder = starts.indexOfLast { it <= i }.coerceAtMost(documents.lastIndex)
                    return documents[folder].opener.openDocument((i - starts[folder]).toULong())
                }
            }
            return Documents(documents.flatMap { it.names }, opener)
        }
    }
}
