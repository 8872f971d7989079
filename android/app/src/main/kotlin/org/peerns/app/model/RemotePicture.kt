package org.peerns.app.model

/**
 * Which of the peer's video tracks a 1:1 call's one picture shows: its `screen` while it says it
 * shares its screen, from the screen's first frame (a peer that says so without sending one keeps
 * its camera shown), else its camera, the first other video track seen (a PeerNS peer's `video`;
 * a browser's tracks have random IDs and it never says it shares a screen). Not thread-safe.
 */
class RemotePicture {
    // The peer says it shares its screen.
    private var sharing = false

    // Its screen's frames came since: the picture shows them.
    private var showingScreen = false
    private var camera: String? = null

    /** The track shown now (null: no camera seen yet, no screen). */
    val shown: String? get() = if (showingScreen) SCREEN else camera

    /**
     * Whether [track]'s frame is drawn; the first camera track seen is taken as the camera. The
     * screen's first frame while shared takes the picture over: [gone] is told the camera's track.
     */
    fun shows(track: String, gone: (String) -> Unit = {}): Boolean {
        if (track == SCREEN) {
            if (!sharing) return false
            if (!showingScreen) {
                showingScreen = true
                camera?.let(gone)
            }
            return true
        }
        if (showingScreen) return false
        if (camera == null) camera = track
        return track == camera
    }

    /** The peer shares its screen, or no longer; returns the track no longer shown (its screen, when it stops). */
    fun screenShared(shared: Boolean): String? {
        sharing = shared
        if (shared || !showingScreen) return null
        showingScreen = false
        return SCREEN
    }

    /** Forgets the camera seen (the media stopped); what the peer says it shares stays. */
    fun clear() {
        camera = null
        showingScreen = false
    }

    companion object {
        /** The track a PeerNS peer shares its screen on. */
        const val SCREEN = "screen"
    }
}
