package org.peerns.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import org.peerns.ffi.NetworkKind

/**
 * Follows the default network (ConnectivityManager) and calls [onChange] on each change of it,
 * with [NetworkKind.NONE] when there is none: feed it to `PeernsNode.networkChanged`. The first
 * call reports the current network right after creation. Calls come one at a time on a system
 * thread. [close] unregisters.
 */
class NetworkMonitor(context: Context, private val onChange: (NetworkKind) -> Unit) : AutoCloseable {
    private val manager = context.getSystemService(ConnectivityManager::class.java)

    /** The last reported network and its kind; touched on the callback thread only. */
    private var current: Pair<Network, NetworkKind>? = null

    private val callback = object : ConnectivityManager.NetworkCallback() {
        // Always called right after onAvailable (API 26+), and whenever capabilities change.
        override fun onCapabilitiesChanged(network: Network, capabilities: NetworkCapabilities) {
            report(network to kindOf(capabilities))
        }

        override fun onLost(network: Network) {
            if (current?.first == network) report(null)
        }
    }

    init {
        manager.registerDefaultNetworkCallback(callback)
    }

    /** Reports a switch of network or of kind, not every capability update. */
    private fun report(now: Pair<Network, NetworkKind>?) {
        if (now == current) return
        current = now
        onChange(now?.second ?: NetworkKind.NONE)
    }

    override fun close() = manager.unregisterNetworkCallback(callback)

    private fun kindOf(c: NetworkCapabilities): NetworkKind = when {
        c.hasTransport(NetworkCapabilities.TRANSPORT_WIFI) -> NetworkKind.WIFI
        c.hasTransport(NetworkCapabilities.TRANSPORT_CELLULAR) -> NetworkKind.CELLULAR
        c.hasTransport(NetworkCapabilities.TRANSPORT_ETHERNET) -> NetworkKind.ETHERNET
        else -> NetworkKind.OTHER
    }
}
