package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import org.junit.Test
import org.peerns.testing.startedNode

class SettingsViewModelTest {
    private class Store(override var signalingUrl: String, override var startAtBoot: Boolean = false) : SettingsStore

    @Test
    fun nameFingerprintAndSignalingServer() = runTest(timeout = 60.seconds) {
        withContext(Dispatchers.Default) {
            val node = startedNode("ann")
            try {
                val store = Store("wss://0.peerjs.com:443/?key=peerjs")
                val vm = SettingsViewModel(node, store)
                vm.refresh()
                val identity = node.identity()
                assertEquals("ann", vm.state.value.name)
                assertEquals(identity.fingerprint, vm.state.value.fingerprint)
                assertEquals(identity.short, vm.state.value.shortFingerprint)
                // The share link the screen shows as a QR code.
                assertEquals(node.shareLink(), vm.state.value.shareLink)
                assertTrue(vm.state.value.shareLink.startsWith("peerns2:"))

                assertTrue(vm.saveName("  Ann B. "))
                assertEquals("Ann B.", node.identity().displayName)
                assertEquals("Ann B.", vm.state.value.name)

                assertFalse(vm.saveSignalingUrl("http://example.org"))
                assertNotNull(vm.state.value.error)
                assertEquals("wss://0.peerjs.com:443/?key=peerjs", store.signalingUrl)
                assertFalse(vm.state.value.restartNeeded)
                assertTrue(vm.saveSignalingUrl(" ws://127.0.0.1:9000/ "))
                assertEquals("ws://127.0.0.1:9000/", store.signalingUrl)
                assertTrue(vm.state.value.restartNeeded)

                assertFalse(vm.state.value.startAtBoot)
                vm.setStartAtBoot(true)
                assertTrue(store.startAtBoot)
                assertTrue(vm.state.value.startAtBoot)
            } finally {
                node.stop()
            }
        }
    }

    @Test
    fun signalingUrlsNeedWebSocketSchemeAndHost() {
        assertTrue(SettingsViewModel.validSignalingUrl("wss://peer.example.org/?key=peerjs"))
        assertTrue(SettingsViewModel.validSignalingUrl("ws://127.0.0.1:9000/"))
        assertFalse(SettingsViewModel.validSignalingUrl("wss://"))
        assertFalse(SettingsViewModel.validSignalingUrl("ws:///path"))
        assertFalse(SettingsViewModel.validSignalingUrl("https://peer.example.org"))
        assertFalse(SettingsViewModel.validSignalingUrl("ws://a b"))
    }
}
