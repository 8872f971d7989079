package org.peerns.app.model

import org.peerns.qr.PeernsLinks

/** What a link read from a QR code does. Pure Kotlin. */
object ScannedLink {
    /**
     * A contact's share link (`peerns2:`) asks its owner to become a contact, as "add by link"
     * does ([ContactsViewModel.add]); a group invite (`peerns2-group:`) joins the group, as
     * "join by link" does ([GroupsViewModel.join]). Failures land in those models' errors.
     * Returns the screen to open next (the joined group's chat), or null.
     */
    suspend fun use(link: String, contacts: ContactsViewModel, groups: GroupsViewModel): Screen? = when {
        PeernsLinks.isGroup(link) -> groups.join(link)?.let { Screen.GroupChat(it) }
        PeernsLinks.isContact(link) -> {
            contacts.add(link)
            null
        }
        else -> null
    }
}
